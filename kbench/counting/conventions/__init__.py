"""Counting conventions as data: each is a named rule table over ``kbench.counting.layer_walk`` (which layer
kinds count, and how much per element), with a docstring in its module saying what it counts.

``CONVENTIONS`` maps a name to its operation-counting ``Convention``; ``count(name, model,
input_shape, part)`` counts one model per image. ``PARAMETER_CONVENTIONS`` are the ways a
printed parameter count counts (``params``: torchvision, keras, weights_and_biases, and the notes'
own); ``ALL`` is one vocabulary of both, by name, as the paper tables name them. ``part`` is an explicit option (``PARTS``): ``whole``, ``features`` (no
classifier, global pooling kept) or ``backbone`` (neither). ``count_activations`` gives the output
elements of conv/matmul layers (fvcore's activations).
"""

from __future__ import annotations

from kbench.counting.conventions import macs, mmengine, notes, params, ptflops, tf
from kbench.counting.conventions._base import Convention
from kbench.counting.parts import PARTS, Counted
from kbench.counting.activations import count_activations

CONVENTIONS: dict[str, Convention] = {module.CONVENTION.name: module.CONVENTION
                                      for module in (macs, tf, mmengine, notes, ptflops)}
PARAMETER_CONVENTIONS: dict[str, Convention] = {c.name: c for c in (*params.CONVENTIONS, notes.CONVENTION)}
ALL: dict[str, Convention] = {**CONVENTIONS, **PARAMETER_CONVENTIONS}

__all__ = ["ALL", "CONVENTIONS", "PARAMETER_CONVENTIONS", "PARTS", "Convention", "Counted", "count",
           "count_activations"]


def count(name: str, model, input_shape=None, part: str = "whole") -> Counted:
    """``name``'s count of ``part`` of ``model`` per image (names and parts validated by the caller)."""
    return CONVENTIONS[name].count(model, input_shape, part)
