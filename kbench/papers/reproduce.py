"""``kbench reproduce``: every printed number of the papers' tables beside kbench's measurement, with a verdict.

One report row per printed number (``kbench.papers.loader.REPORT_COLUMNS``). Verdicts (``loader.VERDICTS``):

* ``exact``: the measurement equals the printed number;
* ``rounding``: equal at the printed precision (within half of the last printed digit);
* ``tolerance``: within the value's stated relative ``tolerance`` (a paper's rounding of an
  approximate count);
* ``explained``: differs, and the value's ``check`` (``kbench.papers.checks``: another convention,
  part, layout, input size, or arithmetic over measured quantities) reproduces the printed figure;
  ``check`` says what was computed and ``check_measured`` gives its value;
* ``unexplained``: differs, and no check reproduces it (the note says what was tried);
* ``unreadable``: the source garbled or cut the cell;
* ``speed``: a speed on the paper's hardware (``--speed`` compares ratios within a table);
* ``accuracy``: accuracy on the paper's data set, which kbench does not have;
* ``not_measurable``: a fact kbench cannot locate in its model (the note says which);
* ``missing_model``: kbench has no model for the row (the note says why).

Measurements come from the analytic counters (``kbench.counting.conventions``, ``kbench.counting.layer_walk``): each
distinct (model, input size, classes, ``set``) is built once per run, measured for every value (and
every check) that needs it, and released.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import re
from typing import Any, Callable, Iterable

from kbench.papers.loader import (COMPARED, VERDICTS, PaperTable, PrintedValue, TableRow, load_tables,
                                 report_entry)
from kbench.counting.conventions.params import KERNELS, named_weights, papers_params
from kbench.papers import checks as checks_module
from kbench.papers.vocabulary import CONVENTIONS
from kbench.models.session import forget_models, shapes_only

# Activation memory (max_channels, memory, peak_memory): 16-bit activations, as the MobileNet V2
# paper's memory table assumes; its "Kb" are 1000 bytes (128 x 56 x 56 x 2 B = 802,816 B -> "800").
ACTIVATION_BYTES = 2
_MEMORY_UNITS = {"bytes": 1, "kb": 1000}


class NotMeasured(Exception):
    """kbench cannot measure this printed value (the message says why)."""


def verdict(reported, measured, value: PrintedValue) -> str:
    """The verdict of a measurement against the printed number: exact, rounding, tolerance or
    unexplained. Only a check that runs makes a row ``explained`` (``reproduce``)."""
    if isinstance(reported, tuple) or isinstance(measured, tuple):
        return "exact" if tuple(reported) == tuple(measured) else "unexplained"
    if measured == reported:
        return "exact"
    resolution = value.resolution
    if resolution is not None and abs(measured - reported) <= resolution * (1 + 1e-9):
        return "rounding"
    if value.tolerance is not None and reported and abs(measured / reported - 1) <= value.tolerance:
        return "tolerance"
    return "unexplained"


# ---------------------------------------------------------------- measuring one built model

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
    if len(measured) == 1 and len(printed) >= 2:  # a pooled vector is a 1 x 1 map
        measured = (1, 1) + tuple(measured)
    trimmed = tuple(measured)
    while len(trimmed) > len(printed) and trimmed[-1] == 1:
        trimmed = trimmed[:-1]
    if len(trimmed) > len(printed) and trimmed[:len(printed)] == printed:
        trimmed = trimmed[:len(printed)]
    while len(trimmed) < len(printed) and printed[len(printed) - len(trimmed) - 1] == 1:
        trimmed = (1,) + trimmed
    while len(trimmed) > len(printed) and trimmed[0] == 1:  # "1024 × 1000" for a 1 x 1 x 1024 x 1000 kernel
        trimmed = trimmed[1:]
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

    def params(self, name: str) -> int:
        """The model's parameters as convention ``name`` counts them (torchvision's for a name that
        is not a parameter convention: a label such as 'paper')."""
        convention = CONVENTIONS.get(name)
        if convention is None or convention.count_params is None:
            convention = CONVENTIONS["torchvision"]
        if convention.name == "notes":
            from kbench.counting.fit import SALIENCY_MODELS

            bn = SALIENCY_MODELS.get(self.name, {}).get("bn", True)
            return self._cached(("params", "notes", bn), lambda: convention.count_params(self.model, bn=bn))
        return self._cached(("params", convention.name), lambda: convention.count_params(self.model))

    def measure(self, value: PrintedValue, reported):
        q = value.quantity
        if value.layers:
            return self._measure_located(value, reported)
        if value.at and not _whole_model_at(value.at):
            raise NotMeasured(f"no kbench layer locator ('layers') for {value.at!r} yet")
        if q == "params":
            return self.params(value.convention)
        if q == "weights":
            from kbench.counting.layer_walk import flat_layers

            return named_weights(layer for _, layer in flat_layers(self.model))
        if q in ("macs", "flops"):
            convention = _operation_convention(value.convention)
            return self.convention(convention, value.part).total
        if q == "activations":
            from kbench.counting.conventions import count_activations

            return self._cached(("activations", value.part), lambda: count_activations(self.model, value.part)).total
        if q == "weight_layers":
            from kbench.counting.layer_walk import flat_layers

            return sum(1 for _, layer in flat_layers(self.model) if named_weights([layer]))
        if q == "model_size_mb":
            return round(self.params("torchvision") * 4 / 2**20, 6)
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
            strides = getattr(first, "strides", None) or getattr(first, "pool_size", None)
            if strides is not None:
                return int(strides[0])
            if _single_step(first):
                return 1
            raise NotMeasured(f"{layers[0][0]} ({type(first).__name__}) has no stride")
        if q == "padding":
            padding = getattr(first, "padding", "valid")
            return 0 if padding == "valid" else (int(first.kernel_size[0]) - 1) // 2
        if q in ("output_shape", "input_shape", "filter_shape"):
            if q == "filter_shape":
                kernel = next((w for w in first.weights if w.path.rsplit("/", 1)[-1] in KERNELS), None)
                if kernel is not None:
                    measured = _shape(kernel.shape)
                    if _is_dense(first):  # a fully connected layer is a 1 x 1 convolution on a 1 x 1 map
                        measured = (1, 1) + measured
                else:  # a pooling window; a global pool's window is its whole input map
                    measured = _shape(getattr(first, "pool_size", None) or _input_tensor(first).shape[1:-1])
            else:
                after = q == "output_shape" or value.layers.endswith(AFTER)
                measured = _output_shape(first) if after else _shape(_input_tensor(first).shape[1:])
            return _compare_shape(reported, measured) if isinstance(reported, tuple) else measured
        if q == "output_size":
            return int(_output_shape(first)[0])
        if q == "kernel_size":
            size = getattr(first, "kernel_size", None) or getattr(first, "pool_size", None)
            if size is None:
                raise NotMeasured(f"{layers[0][0]} has no kernel")
            return int(size[0])
        if q == "weights":
            return named_weights(layer for _, layer in layers)
        if q == "params":
            return sum(papers_params(layer) for _, layer in layers)
        if q in ("macs", "flops"):
            per_layer = self.convention(_operation_convention(value.convention), value.part).per_layer
            return sum(per_layer.get(name, 0) for name, _ in layers)
        if q in ("max_channels", "memory", "peak_memory"):
            return _activation_memory([_feature_map(layer) for _, layer in layers], value)
        raise NotMeasured(f"kbench does not measure {q!r} at a layer")


def _is_dense(layer) -> bool:
    import keras

    return isinstance(layer, keras.layers.Dense)


def _single_step(layer) -> bool:
    """A layer that takes one step over its input, so that a table prints it with stride 1: a global
    pool (its window is the whole map), a fully connected layer, an activation such as softmax."""
    import keras

    from kbench.counting.parts import _is_global_pooling

    return _is_global_pooling(layer) or isinstance(layer, (keras.layers.Dense, keras.layers.Activation,
                                                           keras.layers.Softmax))


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


def _operation_convention(name: str) -> str:
    """``name`` when it counts operations, else the papers' default, MACs (a label such as 'paper'
    or 'unknown' says the paper did not say)."""
    convention = CONVENTIONS.get(name)
    return name if convention is not None and convention.count is not None else "macs"


def _whole_model_at(at: str) -> bool:
    """``at`` texts that only say where the number is printed, not a part of the model."""
    return at.startswith("all layers")


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
        weights = named_weights([layer])
        return weights // spec.get("filters", 1) if value.at.startswith("one kernel") else weights
    if value.quantity == "params":
        return layer.count_params()
    raise NotMeasured(f"kbench does not measure {value.quantity!r} on a single {kind}")


# ---------------------------------------------------------------- the report

@dataclasses.dataclass
class _Pending:
    """One printed value waiting for its measurements: its report entry and, once measured, the
    check's result (``check_result``) or why the check could not run (``check_error``)."""

    table: PaperTable
    row: TableRow
    value: PrintedValue
    entry: dict[str, Any]
    check_result: Any = None
    check_error: str = ""


def _finish(item: _Pending, measured) -> None:
    entry, value = item.entry, item.value
    reported = entry["reported"]
    entry["measured"] = measured
    entry["verdict"] = verdict(reported, measured, value)
    if not isinstance(reported, tuple) and reported and not isinstance(measured, tuple):
        entry["ratio"] = round(measured / reported, 6)
    from kbench.papers.render import format_like

    entry["measured_text"] = format_like(value, measured)


def _derived(value: PrintedValue, quantity: str = "", convention: str = "", part: str = "", layers: str = "",
             unit: str = "") -> PrintedValue:
    """``value`` as measured another way (a check's ``measured`` or one of its ``measure`` names)."""
    quantity = quantity or value.quantity
    return dataclasses.replace(value, quantity=quantity, convention=convention or value.convention,
                               part=part or value.part, layers=layers or value.layers,
                               unit=unit or (value.unit if quantity == value.quantity else "count"))


def _run_check(measurements: "ModelMeasurements", item: _Pending, input_size) -> Any:
    """The check's result on the built variant: its expression over what it measures."""
    check, value = item.value.check, item.value
    reported = item.entry["reported"]
    base = _derived(value, check.quantity, check.convention, check.part, check.layers, check.unit)
    names = {"measured": measurements.measure(base, reported)}
    if check.expression:
        for name, spec in check.measure.items():
            names[name] = measurements.measure(_derived(value, spec.quantity, spec.convention, spec.part, spec.layers,
                                                        spec.unit), reported)
        height, width = (input_size or (0, 0))[:2]
        names.update(h=height, w=width)
        from kbench.papers.loader import _evaluate

        return _evaluate(check.expression, names, where=check.expression)
    if check.axes:
        shape = names["measured"]
        if not isinstance(shape, tuple) or len(shape) != len(check.axes):
            raise ValueError(f"axes {list(check.axes)} need a shape of {len(check.axes)} sizes, got {shape!r}")
        return tuple(shape[axis] for axis in check.axes)
    return names["measured"]


def _target(item: _Pending):
    """What the check must reproduce: the printed number, or its reading (``reads_as``), with the
    printed precision of that text (decimals, scale)."""
    check, value = item.value.check, item.value
    if not check.reads_as:
        return item.entry["reported"], value.decimals, value.scale
    from kbench.papers.loader import parse_printed

    parsed = parse_printed(check.reads_as)
    target = parsed.value * value.column_scale if parsed.value is not None else None
    return target, parsed.decimals, parsed.scale * value.column_scale


def _number(value) -> str:
    if isinstance(value, tuple):
        return " x ".join(map(str, value))
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return f"{int(value):,}"


def _judge_check(item: _Pending, common_ratio: float | None = None) -> None:
    """Make a row that its measurement did not reproduce ``explained`` or ``unexplained`` by its check."""
    entry, check = item.entry, item.value.check
    note = item.value.note
    if item.check_error:
        entry.update(verdict="unexplained", check=check.says,
                     note=f"the check could not be computed ({item.check_error})" + (f"; {note}" if note else ""))
        return
    target, decimals, scale = _target(item)
    result = item.check_result
    if isinstance(result, tuple) and isinstance(target, tuple):
        result = _compare_shape(target, result)
    if check.same_ratio:
        if common_ratio is None:
            entry.update(verdict="unexplained", check=check.says,
                         note=f"the check needs at least {checks_module.SAME_RATIO_MINIMUM} values in group "
                              f"'{check.same_ratio}'" + (f"; {note}" if note else ""))
            return
        result = result / common_ratio
        tolerance = check.tolerance if check.tolerance is not None else checks_module.SAME_RATIO_TOLERANCE
        ok = bool(target) and abs(result / target - 1) <= tolerance
        how = f"divided by the median ratio {common_ratio:.4f} of group '{check.same_ratio}', within {tolerance:.1%}"
    else:
        ok, how = checks_module.reproduces(check, result, target, decimals=decimals, scale=scale,
                                           value_tolerance=item.value.tolerance)
    reads = f" (read as {check.reads_as})" if check.reads_as else ""
    entry["check"] = f"{check.says} [{'reproduces' if ok else 'does not reproduce'} the printed figure{reads} {how}]"
    if isinstance(result, float):
        result = round(result) if abs(result) >= 1000 else round(result, 6)
    entry["check_measured"] = result
    if ok:
        entry["verdict"] = "explained"
    else:
        entry["verdict"] = "unexplained"
        entry["note"] = (f"the check no longer reproduces the printed figure: it gives {_number(result)}"
                         + (f"; {note}" if note else ""))


def reproduce(tables: Iterable[PaperTable] | None = None, *, progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The report rows of ``tables`` (all by default), in table and reading order."""
    from kbench.models import registry

    tables = list(load_tables() if tables is None else tables)
    report: list[dict[str, Any]] = []
    items: list[_Pending] = []
    pending: dict[tuple, dict[str, list]] = {}
    for table in tables:
        for row, value in table.printed_values():
            entry = report_entry(table, row, value)
            report.append(entry)
            if entry["verdict"] is not None:
                continue
            item = _Pending(table, row, value, entry)
            items.append(item)
            if row.model is None:  # a single layer described by "build"
                try:
                    _finish(item, _measure_built_layer(row, value))
                except NotMeasured as exc:
                    entry.update(verdict="not_measurable", note=f"{exc}" + (f"; {value.note}" if value.note else ""))
                continue
            build = pending.setdefault(row.build_key, {"request": (row.model, row.input_size, row.num_classes,
                                                                   dict(row.set)), "values": [], "checks": []})
            build["values"].append(item)
            if value.check:
                key = value.check.build_key(row)
                pending.setdefault(key, {"request": value.check.model_request(row), "values": [], "checks": []})
                pending[key]["checks"].append(item)
    for build in pending.values():
        model_name, input_size, num_classes, variant = build["request"]
        if progress:
            progress(f"{model_name} {input_size or ''} {variant or ''}".strip())
        request = registry.resolve(model_name, input_size, num_classes, variant)
        with shapes_only():  # every quantity measured here reads shapes and configurations only
            model = request.build()
        measurements = ModelMeasurements(model, model_name, request.input_shape)
        for item in build["values"]:
            try:
                _finish(item, measurements.measure(item.value, item.entry["reported"]))
            except NotMeasured as exc:
                item.entry.update(verdict="not_measurable", note=f"not compared yet: {exc}"
                                  + (f"; {item.value.note}" if item.value.note else ""))
        for item in build["checks"]:
            try:
                item.check_result = _run_check(measurements, item, request.input_shape)
            except (NotMeasured, ValueError, ZeroDivisionError) as exc:
                item.check_error = str(exc)
        del model, measurements
        forget_models()
    groups: dict[tuple, list[_Pending]] = {}
    for item in items:
        if item.value.check is None or item.entry["verdict"] != "unexplained":
            continue
        if item.value.check.same_ratio and not item.check_error:
            groups.setdefault((item.table.id, item.value.check.same_ratio), []).append(item)
        else:
            _judge_check(item)
    for members in groups.values():
        # the ratio of every member whose check could run, the rows its measurement reproduced included
        everyone = [i for i in items if i.value.check and i.value.check.same_ratio == members[0].value.check.same_ratio
                    and i.table.id == members[0].table.id and not i.check_error]
        ratios = checks_module.common_ratios([(id(i), i.check_result, _target(i)[0]) for i in everyone])
        for item in members:
            _judge_check(item, ratios.get(id(item)))
    for entry in report:
        for key in ("reported", "measured", "check_measured"):
            if isinstance(entry[key], tuple):
                entry[key] = "x".join(map(str, entry[key]))
    return report


def verdict_counts(report: list[dict[str, Any]]) -> dict[str, int]:
    counts = {v: 0 for v in VERDICTS}
    for entry in report:
        counts[entry["verdict"]] += 1
    return counts


def compared_count(counts: dict[str, int]) -> int:
    """Printed numbers put beside a measurement (exact ... unexplained)."""
    return sum(counts[v] for v in COMPARED)


def required_models(tables: Iterable[PaperTable]) -> list[tuple]:
    """(model, input size, classes, set) of every build the tables' rows and checks need, validated
    before anything is measured."""
    requests = []
    for table in tables:
        for row in table.rows:
            if not row.model:
                continue
            wanted = [(row.model, row.input_size, row.num_classes, dict(row.set))]
            wanted += [value.check.model_request(row) for value in row.values if value.check and value.check.varies_model]
            for request in wanted:
                if request not in requests:
                    requests.append(request)
    return requests



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
                   "verdict", "check", "note")


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
                     "verdict": None, "check": "", "note": formula.notes}
            rows.append(entry)
            if formula.quantity == "params":
                measured = papers_params(layer)
            elif formula.quantity == "output_size":
                measured = _output_shape(layer)[0]
            elif formula.quantity in ("macs", "flops") and _operation_convention(formula.convention) == formula.convention:
                measured = conventions.count(formula.convention, model, input_shape).total
            else:
                entry.update(verdict="not_measurable",
                             note=f"no kbench convention counts {formula.quantity} as '{formula.convention}': {formula.notes}")
                continue
            entry["measured"] = measured
            entry["verdict"] = "exact" if measured == expected else "unexplained"
            entry["check"] = ""
            outputs = math.prod(_output_shape(layer))
            if measured == expected:
                pass
            elif formula.convention == "tf" and layer.use_bias and measured - expected == outputs:
                entry["verdict"] = "explained"
                entry["check"] = (f"the formula plus 1 per output element for the bias (the TF profiler's BiasAdd: "
                                  f"{expected} + {outputs} = {measured}); the formula lets the bias add stand in for the "
                                  "missing addition of its k*k*n_c - 1")
            elif formula.rounding == "ceil" and dataclasses.replace(formula, rounding="floor").evaluate(
                    **{name: variables[name] for name in formula.variables}) == measured:
                entry["verdict"] = "explained"
                entry["check"] = ("the same formula rounded down (Keras pooling with padding='valid' floors, the "
                                  f"formula's ceil is Caffe's ceil mode) gives {measured}")
            forget_models()
    return rows
