"""Walking a model layer call by layer call, shared by the analytic counters.

``kbench.counting.macs`` (multiply-accumulates), ``kbench.counting.memory_cost`` (memory access cost),
``kbench.counting.activations`` and the conventions are each a table of per-layer-class rules;
``analyze`` is the one walk that applies such a table to a model (the idea of fvcore's
``JitModelAnalysis``): it skips input layers, walks into nested models, sums the rules' values per
layer and in total, and lists the layers that no rule covers. ``layer_calls`` lists a model's
calls once; every count of one profile walks that one list.

A rule is ``rule(layer, input_shapes, output_shapes) -> value`` (shapes without the batch
dimension); it may return ``(value, kind)`` to have its value also summed under ``kind``.
Rules are looked up by the layer's class along its MRO (``RuleTable``), so a subclass inherits
its base class's rule.

Layer names: a layer of a nested Functional model is named by its path from the outer model,
``backbone/conv1`` (nested model name, ``/``, layer name; deeper nesting adds more parts). A
nested model called several times accumulates every call on the same names.

A model whose graph of layers Keras does not keep (a subclassed model, alone or inside a
Functional one) is walked through the layer calls its ``call`` makes, recorded in one symbolic
call (``recorded_calls``): its sublayers get the same rules, and their counts are summed under the
subclassed model's own name (it is one row of a per-layer table).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from typing import Any, Callable, Iterator

from kbench.models.views import is_functional


def prod(values) -> int:
    return int(math.prod(int(v) for v in values))


def count_params(model) -> dict[str, int]:
    """Parameter counts of a model (or layer), the one definition that profiling and timing share:

    * ``params``: the papers' count, as torchvision (``sum(p.numel() for p in model.parameters())``)
      and mmengine count: every weight but BatchNorm's moving mean and variance (which PyTorch
      keeps as buffers, not parameters), frozen weights included;
    * ``params_trainable`` / ``params_non_trainable``: Keras' split (non-trainable: the BN moving
      statistics and any frozen weight);
    * ``params_keras_total``: Keras' ``count_params()``, every weight.
    """
    trainable = sum(prod(w.shape) for w in model.trainable_weights)
    non_trainable = sum(prod(w.shape) for w in model.non_trainable_weights)
    return {
        "params": trainable + non_trainable - batch_norm_statistics(model),
        "params_trainable": trainable,
        "params_non_trainable": non_trainable,
        "params_keras_total": trainable + non_trainable,
    }


def batch_norm_statistics(layer) -> int:
    """Elements of the moving mean and variance of every BatchNormalization layer in ``layer``
    (itself included), each variable counted once however often its layer is shared."""
    import keras

    counted = {}
    inner_layers = layer._flatten_layers(include_self=True, recursive=True) if hasattr(layer, "_flatten_layers") \
        else [layer]
    for inner in inner_layers:
        if isinstance(inner, keras.layers.BatchNormalization) and inner.built:
            for variable in (inner.moving_mean, inner.moving_variance):
                counted[id(variable)] = prod(variable.shape)
    return sum(counted.values())


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


def is_opaque_model(layer) -> bool:
    """A model whose graph of layers Keras does not keep (subclassed; Sequential inside another
    model): walked through its recorded calls."""
    import keras

    return isinstance(layer, keras.Model) and not is_functional(layer)


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


@dataclasses.dataclass(eq=False)
class LayerCall:
    """One call of a layer: ``name`` is the row it counts under (qualified, see the module
    docstring), ``inputs``/``outputs`` its tensors; ``children`` the calls a recorded (subclassed)
    layer made, None for a node of a Functional graph."""

    name: str
    layer: Any
    inputs: Any
    outputs: Any
    children: list["LayerCall"] | None = None

    @functools.cached_property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return tensor_shapes(self.inputs)

    @functools.cached_property
    def output_shapes(self) -> list[tuple[int, ...]]:
        return tensor_shapes(self.outputs)


def layer_calls(model) -> list[LayerCall]:
    """Every layer call of ``model`` in execution order, nested Functional models walked into and
    subclassed ones recorded (see the module docstring). A model that is not Functional is walked
    as one recorded call of itself. Walk it once and give the list to every ``analyze``."""
    if not is_functional(model):
        raise ValueError(f"model {model.name!r} is not Functional: walk kbench.models.views.functional_view(model, "
                         "input_shape), which calls it as one layer")
    calls: list[LayerCall] = []
    _functional_calls(model, "", calls)
    return calls


def _functional_calls(model, prefix, calls):
    import keras

    for node in model_nodes(model):
        layer = node.operation
        if isinstance(layer, keras.layers.InputLayer):
            continue
        name = f"{prefix}{layer.name}"
        if is_nested_model(layer):
            # Its layers see the nested model's own (static) shapes, each call counted again.
            _functional_calls(layer, f"{name}/", calls)
        elif is_opaque_model(layer):
            calls.append(_recorded(layer, name, node.input_tensors))
        else:
            calls.append(LayerCall(name, layer, node.input_tensors, node.outputs))


def _recorded(layer, name, inputs) -> LayerCall:
    """The call of an opaque model on ``inputs``' shapes, with the layer calls its ``call`` makes
    (recorded by a symbolic call, as Keras infers output shapes: nothing runs, no node is added)."""
    import keras
    from keras.src.backend import compute_output_spec

    specs = [keras.KerasTensor((1, *shape)) for shape in tensor_shapes(inputs)]
    with _recording() as roots:
        outputs = compute_output_spec(lambda *x: layer(*x), *specs)
    (top,) = roots  # the opaque layer's own call
    return LayerCall(name, layer, specs, outputs, _named(top["children"], name))


def _named(records, name) -> list[LayerCall]:
    return [LayerCall(name, r["layer"], r["inputs"], r["outputs"], _named(r["children"], name))
            for r in records]


@contextlib.contextmanager
def _recording():
    """Within the block, every ``keras.layers.Layer.__call__`` is recorded as a tree of
    ``{"layer", "inputs", "outputs", "children"}`` (the roots are yielded)."""
    from keras.src.layers.layer import Layer

    original = Layer.__call__
    roots: list[dict] = []
    stack: list[dict] = []

    @functools.wraps(original)
    def recording_call(self, *args, **kwargs):
        record = {"layer": self, "inputs": args[0] if len(args) == 1 else list(args), "outputs": None,
                  "children": []}
        (stack[-1]["children"] if stack else roots).append(record)
        stack.append(record)
        try:
            record["outputs"] = original(self, *args, **kwargs)
        finally:
            stack.pop()
        return record["outputs"]

    Layer.__call__ = recording_call
    try:
        yield roots
    finally:
        Layer.__call__ = original


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
            skip_zero: bool = False, calls: list[LayerCall] | None = None) -> Analysis:
    """Apply ``rules`` to every layer call of ``model`` (see module docstring); ``calls``: its
    ``layer_calls``, when the caller walked it already.

    ``default`` is the rule of layers whose class has none. Without a default, a layer with no
    rule is *uncovered* if it has weights or sublayers (it may compute something the table does
    not know) and costs nothing otherwise (reshapes, activations, ...); neither is listed in
    ``per_layer``. A recorded call of a model, or of a layer with no rule whose own calls were
    recorded, is walked into instead. ``as_number`` converts each rule's value (``int`` by
    default, per layer, before summing). ``skip_zero`` leaves layers that cost 0 out of
    ``per_layer``.
    """
    result = Analysis()
    uncovered: set[str] = set()
    _apply(layer_calls(model) if calls is None else calls, rules, default, as_number, skip_zero, result, uncovered)
    result.uncovered = sorted(uncovered)
    return result


def _apply(calls, rules, default, as_number, skip_zero, result, uncovered):
    import keras

    for call in calls:
        layer = call.layer
        if call.children is not None and isinstance(layer, keras.Model):
            _apply(call.children, rules, default, as_number, skip_zero, result, uncovered)
            continue
        rule = rules.lookup(layer, default)
        if rule is None and call.children:  # a recorded custom layer without a rule: its own calls
            _apply(call.children, rules, default, as_number, skip_zero, result, uncovered)
            continue
        if rule is None:
            if layer.weights or layer._layers:
                uncovered.add(f"{call.name} ({type(layer).__name__})" if call.children is None
                              else f"{call.name}/{layer.name} ({type(layer).__name__})")
            continue
        value = rule(layer, call.input_shapes, call.output_shapes)
        kind = None
        if isinstance(value, tuple):
            value, kind = value
        value = as_number(value)
        if skip_zero and not value:
            continue
        result.per_layer[call.name] = result.per_layer.get(call.name, 0) + value
        result.total += value
        if kind is not None:
            result.by_kind[kind] = result.by_kind.get(kind, 0) + value
