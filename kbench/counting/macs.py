"""An analytic multiply-accumulate counter, independent of the TensorFlow profiler.

It reads each layer's configuration and its input/output shapes in the Functional graph and
applies the textbook formulas, one rule per layer class (fvcore style: one fused
multiply-add = 1 MAC; bias, BN, activations, pooling and element-wise ops are 0). The tests
use it to cross-check ``kbench.profile``'s ``macs`` on every registered model.

Custom layers that multiply (attention, capsules) register a rule with ``@mac_rule(Cls)``;
a weighted layer with no rule is reported in ``unknown_layers`` rather than counted as 0.
Rule signature: ``rule(layer, input_shapes, output_shapes) -> int`` with shapes that
exclude the batch dimension. The walk over the model is ``kbench.counting.layer_walk.analyze``.
"""

from __future__ import annotations

from kbench.counting import rules as _zoo_rules  # noqa: F401 - registers the zoo layers' rules
from kbench.counting.layer_walk import analyze
from kbench.counting.mac_rules import MAC_RULES, mac_rule

__all__ = ["MAC_RULES", "count_macs", "mac_rule"]


def count_macs(model) -> dict:
    """MACs per image of a Functional ``model``: ``{"macs", "per_layer", "unknown_layers"}``.

    ``per_layer`` names the layers of nested Functional models ``nested/layer`` (see
    ``kbench.counting.layer_walk``); layers without a rule and without weights are not listed.
    """
    counted = analyze(model, MAC_RULES)
    return {"macs": counted.total, "per_layer": counted.per_layer, "unknown_layers": counted.uncovered}

