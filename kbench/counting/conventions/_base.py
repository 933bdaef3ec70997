"""What every counting convention shares: the ``Convention`` record and the convention that is
one rule table over the layer walk (counts over a part: ``kbench.counting.parts``)."""

from __future__ import annotations

import dataclasses
from typing import Callable

from kbench.counting.parts import Counted, count_with_rules


@dataclasses.dataclass(frozen=True)
class Convention:
    """A named way to count: operations (``count``), parameters (``count_params``), or both (the
    saliency notes' convention counts both its own way)."""

    name: str
    summary: str                      # one line: what it counts (``kbench conventions``)
    unit: str                         # "macs", "flops" or "params": how a paper would label the number
    count: Callable[..., Counted] | None = None      # count(model, input_shape, part) -> Counted
    count_params: Callable[..., int] | None = None   # count_params(model) -> int


def rule_table_convention(name: str, rules, summary: str, unit: str = "macs") -> Convention:
    """A convention that is one rule table over the layer walk (the input shape is the model's)."""

    def count(model, input_shape=None, part: str = "whole") -> Counted:
        return count_with_rules(model, rules, part)

    return Convention(name=name, summary=summary, unit=unit, count=count)
