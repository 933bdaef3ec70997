"""``macs``: multiply-accumulates of conv, depthwise, separable, transposed conv, dense and the
attention/capsule matmuls (``kbench.counting.macs``' rule table); bias, BN, activations, pooling and
element-wise ops count 0. The papers' "FLOPs"/"mult-adds", torchvision's and fvcore's count."""

from __future__ import annotations

from kbench.counting.conventions._base import convention
from kbench.counting.parts import Counted, count_with_rules


def count(model, input_shape=None, part: str = "whole", *, calls=None) -> Counted:
    from kbench.counting.macs import MAC_RULES

    return count_with_rules(model, MAC_RULES, part, calls=calls)


CONVENTION = convention("macs", count)
