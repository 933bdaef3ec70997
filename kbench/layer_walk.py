"""Walking a Functional model layer by layer, shared by the analytic counters.

``kbench.macs`` (multiply-accumulates), ``kbench.memory_cost`` (memory access cost) and
``kbench.fit`` (the saliency notes' convention) all visit every node of a Functional graph
with its static input/output shapes and apply a per-layer-class rule; this module is that
machinery, once.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator


def prod(values) -> int:
    return int(math.prod(int(v) for v in values))


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


def model_nodes(model) -> Iterator:
    """Every node of a Functional model, inputs first."""
    for depth in sorted(model._nodes_by_depth, reverse=True):
        yield from model._nodes_by_depth[depth]


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
