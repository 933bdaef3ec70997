"""``kbench reproduce``: every printed number of the seed tables beside kbench's measurement, with a verdict.

One report row per printed number (``paper_tables.REPORT_COLUMNS``). Verdicts:

* ``exact``: the measurement equals the printed number;
* ``rounding``: equal at the printed precision (within half of the last printed digit);
* ``tolerance``: within the value's stated relative ``tolerance`` (a paper's rounding of an
  approximate count);
* ``explained``: differs, and the table file records why (``reason``: a typo an audit found,
  another layout, another convention);
* ``unexplained``: differs and nobody knows why yet;
* ``not_measurable``: accuracy on a data set kbench does not have, a speed on the paper's hardware
  (``--speed`` compares ratios within a table instead), or a fact kbench cannot locate in its
  model (the reason says which);
* ``missing_model``: kbench has no model for the row (the reason says why).

Measurements come from the analytic counters (``kbench.counting.conventions``, ``kbench.counting.layer_walk``): each
distinct (model, input size, ``set``) is built once per run, measured for every value that needs
it, and released.
"""

from __future__ import annotations

import fnmatch
import math
import re
from typing import Any, Callable, Iterable

from kbench.papers.loader import (PaperTable, PrintedValue, TableRow, load_tables,
                                 verdict_without_measuring)

VERDICTS = ("exact", "rounding", "tolerance", "explained", "unexplained", "not_measurable", "missing_model")

SPEED_REASON = "a speed on the paper's hardware: only ratios within the table compare (kbench reproduce --speed)"
ACCURACY_REASON = "accuracy on the paper's data set, which kbench does not have"
_BN_STATISTICS = ("moving_mean", "moving_variance")
# Activation memory (max_channels, memory, peak_memory): 16-bit activations, as the MobileNet V2
# paper's memory table assumes; its "Kb" are 1000 bytes (128 x 56 x 56 x 2 B = 802,816 B -> "800").
ACTIVATION_BYTES = 2
_MEMORY_UNITS = {"bytes": 1, "kb": 1000}
_KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel")


class NotMeasured(Exception):
    """kbench cannot measure this printed value (the message says why)."""


def verdict(reported, measured, value: PrintedValue) -> str:
    """The verdict of a measured number against the printed one (see module docstring)."""
    if isinstance(reported, tuple) or isinstance(measured, tuple):
        return "exact" if tuple(reported) == tuple(measured) else ("explained" if value.reason else "unexplained")
    if measured == reported:
        return "exact"
    resolution = value.resolution
    if resolution is not None and abs(measured - reported) <= resolution * (1 + 1e-9):
        return "rounding"
    if value.tolerance is not None and reported and abs(measured / reported - 1) <= value.tolerance:
        return "tolerance"
    return "explained" if value.reason else "unexplained"


# ---------------------------------------------------------------- measuring one built model

def _torchvision_params(model) -> int:
    """Parameters as torchvision/mmengine count them: every weight but BN moving statistics."""
    from kbench.counting.layer_walk import prod

    return sum(prod(w.shape) for w in model.weights if not w.path.endswith(_BN_STATISTICS))


def _kernel_weights(layers, names=_KERNELS) -> int:
    """Elements of the layers' weights named in ``names`` (kernels by default)."""
    from kbench.counting.layer_walk import prod

    return sum(prod(w.shape) for layer in layers for w in layer.weights if w.path.rsplit("/", 1)[-1] in names)


# A locator ending in ":output" reads an input_shape at the located layer's output: the input of an
# operation the model leaves out (its softmax, which belongs to the loss as in torchvision).
AFTER = ":output"


def _located(model, value: PrintedValue) -> list[tuple[str, Any]]:
    """The ``(qualified name, layer)`` pairs the value's ``layers`` globs name, in model order."""
    from kbench.counting.layer_walk import flat_layers

    patterns = [p.strip().removesuffix(AFTER) for p in value.layers.split(",") if p.strip()]
    found = [(name, layer) for name, layer in flat_layers(model) if any(fnmatch.fnmatchcase(name, p) for p in patterns)]
    if not found:
        raise NotMeasured(f"no layer of {model.name} matches {value.layers!r}")
    return found


def _output_shape(layer) -> tuple[int, ...]:
    output = layer.output[0] if isinstance(layer.output, (list, tuple)) else layer.output
    return _shape(output.shape[1:])


def _input_tensor(layer):
    return layer.input[0] if isinstance(layer.input, (list, tuple)) else layer.input


def _shape(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)


def _compare_shape(printed: tuple[int, ...], measured: tuple[int, ...]) -> tuple[int, ...]:
    """The measured shape as printed: "32 × 32" for (32, 32, 1), "1 × 1 × 120" for (120,), "3 × 3 × 32 dw"
    for a depthwise kernel (3, 3, 32, 1)."""
    if measured == printed:
        return measured
    trimmed = tuple(measured)
    while len(trimmed) > len(printed) and trimmed[-1] == 1:
        trimmed = trimmed[:-1]
    if len(trimmed) > len(printed) and trimmed[:len(printed)] == printed:
        trimmed = trimmed[:len(printed)]
    while len(trimmed) < len(printed) and printed[len(printed) - len(trimmed) - 1] == 1:
        trimmed = (1,) + trimmed
    return trimmed


class ModelMeasurements:
    """Every measurement of one built model that a table may ask for (computed on demand, cached)."""

    def __init__(self, model, name: str, input_shape):
        self.model, self.name, self.input_shape = model, name, tuple(input_shape)
        self._counts: dict[tuple, Any] = {}

    def _cached(self, key, compute: Callable):
        if key not in self._counts:
            self._counts[key] = compute()
        return self._counts[key]

    def convention(self, name: str, part: str):
        from kbench.counting import conventions

        if name == "notes":
            from kbench.counting.conventions import notes
            from kbench.counting.fit import SALIENCY_MODELS

            bn = SALIENCY_MODELS.get(self.name, {}).get("bn", True)
            return self._cached(("notes", part, bn),
                                lambda: notes.count(self.model, self.input_shape, part, bn=bn))
        return self._cached((name, part), lambda: conventions.count(name, self.model, self.input_shape, part))

    def measure(self, value: PrintedValue, reported):
        q = value.quantity
        if value.layers:
            return self._measure_located(value, reported)
        if value.at and not _whole_model_at(value.at):
            raise NotMeasured(f"no kbench layer locator ('layers') for {value.at!r} yet")
        if q == "params":
            if value.convention == "keras":
                return self.model.count_params()
            if value.convention == "weights_and_biases":
                return _kernel_weights([self.model], _KERNELS + ("bias",))
            if value.convention == "notes":
                from kbench.counting.fit import SALIENCY_MODELS, seed_param_count

                return seed_param_count(self.model, bn=SALIENCY_MODELS.get(self.name, {}).get("bn", True))
            return self._cached("torchvision_params", lambda: _torchvision_params(self.model))
        if q == "weights":
            from kbench.counting.layer_walk import flat_layers

            return _kernel_weights(layer for _, layer in flat_layers(self.model))
        if q in ("macs", "flops"):
            convention = value.convention if value.convention in _COUNTING else "macs"
            return self.convention(convention, value.part).total
        if q == "activations":
            from kbench.counting.conventions import count_activations

            return self._cached(("activations", value.part), lambda: count_activations(self.model, value.part)).total
        if q == "weight_layers":
            from kbench.counting.layer_walk import flat_layers

            return sum(1 for _, layer in flat_layers(self.model) if _kernel_weights([layer]))
        if q == "model_size_mb":
            return round(self._cached("torchvision_params", lambda: _torchvision_params(self.model)) * 4 / 2**20, 6)
        raise NotMeasured(f"kbench does not measure {q!r} without a layer locator ('layers')")

    def _measure_located(self, value: PrintedValue, reported):
        q = value.quantity
        layers = _located(self.model, value)
        first = layers[0][1]
        if q == "blocks":
            return len(layers)
        if q == "channels":  # the last matching layer: a stage's output
            return int(_output_shape(layers[-1][1])[-1])
        if q == "expansion":  # an expansion conv: output over input channels
            return int(_output_shape(first)[-1]) // int(first.input.shape[-1])
        if q == "stride":
            return int((getattr(first, "strides", None) or getattr(first, "pool_size"))[0])
        if q == "padding":
            padding = getattr(first, "padding", "valid")
            return 0 if padding == "valid" else (int(first.kernel_size[0]) - 1) // 2
        if q in ("output_shape", "input_shape", "filter_shape"):
            if q == "filter_shape":
                kernel = next((w for w in first.weights if w.path.rsplit("/", 1)[-1] in _KERNELS), None)
                if kernel is not None:
                    measured = _shape(kernel.shape)
                else:  # a pooling window; a global pool's window is its whole input map
                    measured = _shape(getattr(first, "pool_size", None) or _input_tensor(first).shape[1:-1])
            else:
                after = q == "output_shape" or value.layers.endswith(AFTER)
                measured = _output_shape(first) if after else _shape(_input_tensor(first).shape[1:])
            return _compare_shape(reported, measured) if isinstance(reported, tuple) else measured
        if q == "output_size":
            return int(_output_shape(first)[0])
        if q == "weights":
            return _kernel_weights(layer for _, layer in layers)
        if q == "params":
            return sum(_torchvision_params(layer) for _, layer in layers)
        if q in ("macs", "flops"):
            per_layer = self.convention(value.convention if value.convention in _COUNTING else "macs", value.part).per_layer
            return sum(per_layer.get(name, 0) for name, _ in layers)
        if q in ("max_channels", "memory", "peak_memory"):
            return _activation_memory([_feature_map(layer) for _, layer in layers], value)
        raise NotMeasured(f"kbench does not measure {q!r} at a layer")


def _feature_map(layer) -> tuple[int, int, int]:
    """A layer's output as (height, width, channels); a pooled vector is a 1 x 1 map."""
    shape = _output_shape(layer)
    return (1, 1, shape[0]) if len(shape) == 1 else shape[-3:]


def _activation_memory(maps: list[tuple[int, int, int]], value: PrintedValue):
    """What a memory table prints, from the feature maps (H, W, C) the value's ``layers`` name as the
    tensors that must be materialised: at ``at`` = "HxW", the largest channel count among them
    (``max_channels``) or that many channels of H x W 16-bit activations (``memory``); at "max", the
    largest such tensor of all (``peak_memory``)."""
    if value.quantity != "max_channels" and value.unit not in _MEMORY_UNITS:
        raise NotMeasured(f"memory is measured in {' or '.join(_MEMORY_UNITS)}, not {value.unit!r}")
    if value.quantity == "peak_memory":
        elements = max(h * w * c for h, w, c in maps)
    else:
        resolution = re.fullmatch(r"(\d+)x(\d+)", value.at)
        if not resolution:
            raise NotMeasured(f"{value.quantity} needs 'at' = a resolution such as '56x56', got {value.at!r}")
        h, w = int(resolution[1]), int(resolution[2])
        channels = [c for mh, mw, c in maps if (mh, mw) == (h, w)]
        if not channels:
            raise NotMeasured(f"none of the located layers has a {h}x{w} output")
        if value.quantity == "max_channels":
            return max(channels)
        elements = max(channels) * h * w
    size, per_unit = elements * ACTIVATION_BYTES, _MEMORY_UNITS[value.unit]
    return size // per_unit if size % per_unit == 0 else size / per_unit


_COUNTING = {"macs", "tf", "mmengine", "notes", "ptflops"}


def _whole_model_at(at: str) -> bool:
    """``at`` texts that only say where the number is printed, not a part of the model."""
    return at.startswith("line ") or at.startswith("all layers")


# ---------------------------------------------------------------- single layers ("build" rows)

def _measure_built_layer(row: TableRow, value: PrintedValue):
    import keras
    import numpy as np

    spec = dict(row.build)
    kind = spec.pop("layer")
    data_input, kernel = spec.pop("input", None), spec.pop("kernel", None)
    in_channels, in_features = spec.pop("in_channels", None), spec.pop("in_features", None)
    layer = getattr(keras.layers, kind)(**spec)
    if kind == "Dense":
        layer.build((None, in_features))
    elif data_input is not None:
        layer.build((None, len(data_input), len(data_input[0]), 1))
    else:
        layer.build((None, None, None, in_channels))
    if value.quantity == "output_value":
        layer.set_weights([np.asarray(kernel, dtype="float32")[:, :, None, None]] + layer.get_weights()[1:])
        output = np.asarray(layer(np.asarray(data_input, dtype="float32")[None, :, :, None]))[0, :, :, 0]
        r, c = (int(part.split()[-1]) - 1 for part in value.at.split(","))
        return float(output[r, c])
    if value.quantity == "weights":
        weights = _kernel_weights([layer])
        return weights // spec.get("filters", 1) if value.at.startswith("one kernel") else weights
    if value.quantity == "params":
        return layer.count_params()
    raise NotMeasured(f"kbench does not measure {value.quantity!r} on a single {kind}")


# ---------------------------------------------------------------- the report

def _skeleton(table: PaperTable, row: TableRow, value: PrintedValue) -> dict[str, Any]:
    reported = value.evaluate(row.input_size)
    return {
        "table": table.id,
        "source": f"{table.source}:{table.lines[0]}-{table.lines[1]}",
        "row": f"{row.label} [{value.at}]" if value.at else row.label,
        "quantity": value.quantity,
        "reported": reported,
        "reported_text": value.text,
        "measured": None,
        "unit": value.unit,
        "convention": value.convention + ("" if value.part == "whole" else f" ({value.part})"),
        "ratio": None,
        "verdict": None,
        "reason": value.reason,
    }


def _finish(entry: dict[str, Any], value: PrintedValue, measured) -> None:
    reported = entry["reported"]
    entry["measured"] = measured
    entry["verdict"] = verdict(reported, measured, value)
    if not isinstance(reported, tuple) and reported:
        entry["ratio"] = round(measured / reported, 6)
    if entry["verdict"] in ("explained", "unexplained") and value.note and not value.reason:
        entry["reason"] = value.note


def _unmeasured(entry: dict[str, Any], row: TableRow, value: PrintedValue, fixed: str | None) -> bool:
    """Fill a row that needs no model; False when it must be measured."""
    if fixed == "not_measurable":
        entry["verdict"] = "not_measurable"
        entry["reason"] = value.reason or ACCURACY_REASON
        return True
    if fixed == "missing_model":
        entry["verdict"] = "missing_model"
        entry["reason"] = row.missing_model
        return True
    if value.kind == "speed":
        entry["verdict"] = "not_measurable"
        entry["reason"] = value.reason or SPEED_REASON
        return True
    if value.evaluate(row.input_size) is None:
        entry["verdict"] = "not_measurable"
        entry["reason"] = value.reason or f"the printed text cannot be read: {value.unreadable}"
        return True
    return False


def reproduce(tables: Iterable[PaperTable] | None = None, *, progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The report rows of ``tables`` (all by default), in table and reading order."""
    import keras

    from kbench.models import registry

    tables = list(load_tables() if tables is None else tables)
    report: list[dict[str, Any]] = []
    pending: dict[tuple, list] = {}
    for table in tables:
        for row, value in table.printed_values():
            entry = _skeleton(table, row, value)
            report.append(entry)
            fixed = verdict_without_measuring(row, value)
            if _unmeasured(entry, row, value, fixed):
                continue
            if row.model is None:  # a single layer described by "build"
                try:
                    _finish(entry, value, _measure_built_layer(row, value))
                except NotMeasured as exc:
                    entry.update(verdict="not_measurable", reason=value.reason or str(exc))
                continue
            pending.setdefault(row.build_key, []).append((row, value, entry))
    for key, items in pending.items():
        row = items[0][0]
        if progress:
            progress(f"{row.model} {row.input_size or ''} {dict(row.set) or ''}".strip())
        request = registry.resolve(row.model, row.input_size, row.num_classes, dict(row.set))
        model = request.build()
        measurements = ModelMeasurements(model, row.model, request.input_shape)
        for row, value, entry in items:
            try:
                _finish(entry, value, measurements.measure(value, entry["reported"]))
            except NotMeasured as exc:
                entry.update(verdict="not_measurable", reason=f"not compared yet: {exc}" + (f"; {value.reason}" if value.reason else ""))
        del model, measurements
        keras.backend.clear_session()
    for entry in report:
        for key in ("reported", "measured"):
            if isinstance(entry[key], tuple):
                entry[key] = "x".join(map(str, entry[key]))
    return report


def verdict_counts(report: list[dict[str, Any]]) -> dict[str, int]:
    counts = {v: 0 for v in VERDICTS}
    for entry in report:
        counts[entry["verdict"]] += 1
    return counts


def required_models(tables: Iterable[PaperTable]) -> list[str]:
    """The registered models the tables' measurable rows need (validated before measuring)."""
    names = []
    for table in tables:
        for row in table.rows:
            if row.model and row.model not in names:
                names.append(row.model)
    return names



# ---------------------------------------------------------------- printed formulas on real layers

# The layer each formula is checked on: its configuration and the formula's variables for it.
# Sizes are small and chosen so that a stride-2 window does not divide the map (floor vs ceil).
_FORMULA_CASES = {
    "Conv2D": (dict(filters=5, kernel_size=3, strides=2, padding="valid"), (11, 11, 4)),
    "SeparableConv2D": (dict(filters=5, kernel_size=3, strides=1, padding="valid"), (9, 9, 4)),
    "DepthwiseConv2D": (dict(kernel_size=3, strides=1, padding="valid"), (9, 9, 4)),
    "Dense": (dict(units=7), (16,)),
    "MaxPooling2D": (dict(pool_size=3, strides=2, padding="valid"), (10, 10, 4)),
    "AveragePooling2D": (dict(pool_size=3, strides=2, padding="valid"), (10, 10, 4)),
}
FORMULA_COLUMNS = ("table", "formula", "text", "layer", "variables", "formula_value", "measured", "convention",
                   "verdict", "reason")


def _formula_layer_model(formula):
    import keras

    config, input_shape = _FORMULA_CASES[formula.layer]
    config = dict(config)
    if "Pooling" not in formula.layer:  # a bias exactly where the formula has its "+ 1" term
        config["use_bias"] = "+ 1" in formula.expression
    inputs = keras.Input(input_shape)
    layer = getattr(keras.layers, formula.layer)(**config, name="layer")
    return keras.Model(inputs, layer(inputs)), layer, input_shape


def _formula_variables(layer, input_shape) -> dict[str, int]:
    output = _output_shape(layer)
    if len(input_shape) == 1:
        return {"n_in": input_shape[0], "n_out": output[0]}
    k = int((getattr(layer, "kernel_size", None) or layer.pool_size)[0])
    s = int(layer.strides[0])
    return {"k": k, "s": s, "p": 0, "h_in": input_shape[0], "c_in": input_shape[-1], "n_c": input_shape[-1],
            "h_out": output[0], "w_out": output[1], "c_out": output[-1]}


def check_formulas(tables: Iterable[PaperTable]) -> list[dict[str, Any]]:
    """Each printed formula evaluated for a real Keras layer beside what kbench measures on it."""
    import keras

    from kbench.counting import conventions

    rows = []
    for table in tables:
        for formula in table.formulas:
            model, layer, input_shape = _formula_layer_model(formula)
            variables = _formula_variables(layer, input_shape)
            expected = formula.evaluate(**{name: variables[name] for name in formula.variables})
            entry = {"table": table.id, "formula": formula.name, "text": formula.text, "layer": formula.layer,
                     "variables": ", ".join(f"{n}={variables[n]}" for n in formula.variables),
                     "formula_value": expected, "measured": None, "convention": formula.convention,
                     "verdict": None, "reason": formula.notes}
            rows.append(entry)
            if formula.quantity == "params":
                measured = _torchvision_params(layer)
            elif formula.quantity == "output_size":
                measured = _output_shape(layer)[0]
            elif formula.quantity in ("macs", "flops") and formula.convention in _COUNTING:
                measured = conventions.count(formula.convention, model, input_shape).total
            else:
                entry.update(verdict="not_measurable",
                             reason=f"no kbench convention counts {formula.quantity} as '{formula.convention}': {formula.notes}")
                continue
            entry["measured"] = measured
            entry["verdict"] = "exact" if measured == expected else ("explained" if formula.notes else "unexplained")
            outputs = math.prod(_output_shape(layer))
            if formula.convention == "tf" and layer.use_bias and measured - expected == outputs:
                entry["verdict"] = "explained"
                entry["reason"] = (f"the TF profiler adds 1 per output element for the bias (BiasAdd: +{outputs}); the formula "
                                   "lets the bias add stand in for the missing addition of its k*k*n_c - 1")
            keras.backend.clear_session()
    return rows
