"""Counts over a named part of a model, shared by every rule-table count (conventions,
activations): the parts (``whole``, ``features``, ``backbone``), the ``Counted`` record, and the
walk restricted to a part.

A part is always an explicit, named option: mmpretrain's ``get_flops`` counts ``extract_feat``
(no classifier), so a table that prints its numbers says ``part = "backbone"`` (or ``features``)
beside the value, and ``kbench profile --part`` names it on the command line.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from kbench.counting.layer_walk import RuleTable, flat_layers, is_opaque_model, model_nodes, tensor_shapes
from kbench.errors import UsageError

# Part name -> what it covers. The head is what follows the model's last spatial (H, W, C) output.
PARTS: dict[str, str] = {
    "whole": "the whole model",
    "features": "without the classifier head but with its global pooling (mmpretrain extract_feat with the GAP neck)",
    "backbone": "without the global pooling and the classifier head (mmpretrain extract_feat(stage='backbone'))",
}


@dataclasses.dataclass(frozen=True)
class Counted:
    """A convention's count of one model, per image: the total, per layer (qualified names, see
    ``kbench.counting.layer_walk``) and the weighted layers no rule of the convention covers."""

    total: int
    per_layer: dict[str, int]
    uncovered: tuple[str, ...] = ()


def _is_global_pooling(layer) -> bool:
    import keras

    L = keras.layers
    return isinstance(layer, (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D,
                              L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D))


def excluded_layers(model, part: str) -> set[int]:
    """``id()`` of every layer (nested models' layers included) that ``part`` leaves out.

    The head is every top-level layer called after the last one whose output is a feature map
    (rank 3 or more without the batch dimension); ``features`` keeps the global pooling layers that
    directly follow it (mmpretrain's GAP neck), ``backbone`` keeps neither.
    """
    import keras

    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; known: {', '.join(PARTS)}")
    if part == "whole":
        return set()
    nodes = [n for n in model_nodes(model) if not isinstance(n.operation, keras.layers.InputLayer)]
    last_map = max((i for i, n in enumerate(nodes) if any(len(s) >= 3 for s in tensor_shapes(n.outputs))), default=-1)
    head = nodes[last_map + 1:]
    if part == "features":
        while head and _is_global_pooling(head[0].operation):
            head = head[1:]
    excluded = set()
    for node in head:
        layer = node.operation
        if is_opaque_model(layer):
            raise UsageError(f"part {part!r} needs the model's head apart from the rest, but {layer.name!r} is a "
                             "subclassed model that ends in it (one layer to kbench); count it whole")
        excluded.add(id(layer))
        if hasattr(layer, "_nodes_by_depth"):
            excluded.update(id(inner) for _, inner in flat_layers(layer))
    return excluded


class PartRules(RuleTable):
    """``rules`` restricted to a part: excluded layers cost 0 (and are not listed)."""

    def __init__(self, rules: RuleTable, excluded: set[int], default: Callable | None = None):
        super().__init__(rules)
        self._excluded = excluded
        self._default = default

    def lookup(self, layer, default=None):
        if id(layer) in self._excluded:
            return _excluded_rule
        return super().lookup(layer, default)


def _excluded_rule(layer, input_shapes, output_shapes):
    return 0


def count_with_rules(model, rules: RuleTable, part: str, *, default: Callable | None = None, calls=None) -> Counted:
    """``kbench.counting.layer_walk.analyze`` with ``rules`` over ``part`` of ``model`` (``calls``: its
    ``layer_calls``, if walked already)."""
    from kbench.counting.layer_walk import analyze

    excluded = excluded_layers(model, part)
    counted = analyze(model, PartRules(rules, excluded), default=default, skip_zero=True, calls=calls)
    return Counted(total=int(counted.total), per_layer=dict(counted.per_layer), uncovered=tuple(counted.uncovered))


def copy_rules(rules: RuleTable) -> RuleTable:
    """A new table starting from ``rules`` (a convention overrides some classes of another)."""
    return RuleTable(rules)


def rule_for_class(rules: RuleTable, cls):
    """The rule ``rules`` applies to instances of ``cls`` (along its MRO), or None."""
    return next((rules[c] for c in cls.__mro__ if c in rules), None)


def output_elements(output_shapes) -> int:
    from kbench.counting.layer_walk import prod

    return prod(output_shapes[0]) if output_shapes else 0


def input_elements(input_shapes) -> int:
    from kbench.counting.layer_walk import prod

    return prod(input_shapes[0]) if input_shapes else 0

