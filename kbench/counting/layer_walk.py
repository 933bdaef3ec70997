"""Walking a Functional model layer by layer, shared by the analytic counters.

``kbench.counting.macs`` (multiply-accumulates), ``kbench.counting.memory_cost`` (memory access cost) and
``kbench.counting.fit`` (the saliency notes' convention) are each a table of per-layer-class rules;
``analyze`` is the one walk that applies such a table to a model (the idea of fvcore's
``JitModelAnalysis``): it skips input layers, walks into nested Functional models, sums the
rules' values per layer and in total, and lists the layers that no rule covers.

A rule is ``rule(layer, input_shapes, output_shapes) -> value`` (shapes without the batch
dimension); it may return ``(value, kind)`` to have its value also summed under ``kind``.
Rules are looked up by the layer's class along its MRO (``RuleTable``), so a subclass inherits
its base class's rule.

Layer names: a layer of a nested Functional model is named by its path from the outer model,
``backbone/conv1`` (nested model name, ``/``, layer name; deeper nesting adds more parts). A
nested model called several times accumulates every call on the same names.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterator

from kbench.models.views import is_functional


def prod(values) -> int:
    return int(math.prod(int(v) for v in values))


def count_params(model) -> dict[str, int]:
    """Parameter counts of a model (or layer): ``{"params_total", "params_trainable",
    "params_non_trainable"}``; non-trainable includes BN moving statistics. The one definition
    that profiling and timing share."""
    trainable = sum(prod(w.shape) for w in model.trainable_weights)
    non_trainable = sum(prod(w.shape) for w in model.non_trainable_weights)
    return {
        "params_total": trainable + non_trainable,
        "params_trainable": trainable,
        "params_non_trainable": non_trainable,
    }


def tensor_shapes(tensors) -> list[tuple[int, ...]]:
    """Shapes without the batch dimension of a tensor or a (nested) list of tensors."""
    if not isinstance(tensors, (list, tuple)):
        tensors = [tensors]
    flat = []
    for t in tensors:
        if isinstance(t, (list, tuple)):
            flat.extend(tensor_shapes(t))
        elif hasattr(t, "shape"):
            shape = tuple(t.shape[1:])
            if any(d is None for d in shape):
                raise ValueError(f"a static shape is needed, got {tuple(t.shape)}")
            flat.append(shape)
    return flat


def model_nodes(model) -> Iterator:
    """Every node of a Functional model, inputs first."""
    for depth in sorted(model._nodes_by_depth, reverse=True):
        yield from model._nodes_by_depth[depth]


def is_nested_model(layer) -> bool:
    """A Functional model used as a layer: walked into rather than costed as one layer."""
    return is_functional(layer)


def flat_layers(model, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(qualified name, layer)`` of every layer of ``model``, nested Functional models replaced
    by their own layers (without their input layers) under ``nested/`` names, in order."""
    import keras

    for layer in model.layers:
        if is_nested_model(layer):
            inner = (l for l in flat_layers(layer, f"{prefix}{layer.name}/")
                     if not isinstance(l[1], keras.layers.InputLayer))
            yield from inner
        else:
            yield f"{prefix}{layer.name}", layer


class RuleTable(dict):
    """Layer class -> rule; ``lookup`` follows the class's MRO so subclasses inherit rules."""

    def register(self, *layer_classes) -> Callable:
        def record(fn):
            for cls in layer_classes:
                self[cls] = fn
            return fn

        return record

    def lookup(self, layer, default=None):
        for cls in type(layer).__mro__:
            if cls in self:
                return self[cls]
        return default


@dataclasses.dataclass
class Analysis:
    """What ``analyze`` found: the sum over the model, per layer (qualified names), per kind
    (for rules that return ``(value, kind)``) and the layers no rule covers
    (``"name (Class)"``, sorted)."""

    total: Any = 0
    per_layer: dict[str, Any] = dataclasses.field(default_factory=dict)
    by_kind: dict[str, Any] = dataclasses.field(default_factory=dict)
    uncovered: list[str] = dataclasses.field(default_factory=list)


def analyze(model, rules: RuleTable, *, default: Callable | None = None, as_number: Callable = int,
            skip_zero: bool = False) -> Analysis:
    """Apply ``rules`` to every layer call of the Functional ``model`` (see module docstring).

    ``default`` is the rule of layers whose class has none. Without a default, a layer with no
    rule is *uncovered* if it has weights or sublayers (it may compute something the table does
    not know) and costs nothing otherwise (reshapes, activations, ...); neither is listed in
    ``per_layer``. ``as_number`` converts each rule's value (``int`` by default, per layer, before
    summing). ``skip_zero`` leaves layers that cost 0 out of ``per_layer``.
    """
    result = Analysis()
    uncovered: set[str] = set()
    _walk(model, "", rules, default, as_number, skip_zero, result, uncovered)
    result.uncovered = sorted(uncovered)
    return result


def _walk(model, prefix, rules, default, as_number, skip_zero, result, uncovered):
    import keras

    for node in model_nodes(model):
        layer = node.operation
        if isinstance(layer, keras.layers.InputLayer):
            continue
        name = f"{prefix}{layer.name}"
        if is_nested_model(layer):
            # Its layers see the nested model's own (static) shapes, each call counted again.
            _walk(layer, f"{name}/", rules, default, as_number, skip_zero, result, uncovered)
            continue
        rule = rules.lookup(layer, default)
        if rule is None:
            if layer.weights or layer._layers:
                uncovered.add(f"{name} ({type(layer).__name__})")
            continue
        value = rule(layer, tensor_shapes(node.input_tensors), tensor_shapes(node.outputs))
        kind = None
        if isinstance(value, tuple):
            value, kind = value
        value = as_number(value)
        if skip_zero and not value:
            continue
        result.per_layer[name] = result.per_layer.get(name, 0) + value
        result.total += value
        if kind is not None:
            result.by_kind[kind] = result.by_kind.get(kind, 0) + value
