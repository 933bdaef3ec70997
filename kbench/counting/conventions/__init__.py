"""Counting conventions as data: each is a named rule table over ``kbench.counting.layer_walk`` (which layer
kinds count, and how much per element), with a docstring in its module saying what it counts.

``CATALOG`` names them (unit, what each counts, how its tool prints a count) without importing
Keras; ``CONVENTIONS`` maps a name to its ``Convention`` (loaded on first use: the rule tables
import Keras); ``count(name, model, input_shape, part)`` counts one model per image. ``part`` is an
explicit option (``PARTS``): ``whole``, ``features`` (no classifier, global pooling kept) or
``backbone`` (neither). ``count_activations`` gives the output elements of conv/matmul layers
(fvcore's activations).
"""

from __future__ import annotations

import importlib

from kbench.counting.conventions._base import CATALOG, Convention, ConventionInfo
from kbench.counting.parts import PARTS, Counted

__all__ = ["CATALOG", "CONVENTIONS", "PARTS", "Convention", "ConventionInfo", "Counted", "count", "count_activations"]


def _load(name: str):
    if name == "CONVENTIONS":
        value = {key: importlib.import_module(f"{__name__}.{key}").CONVENTION for key in CATALOG}
    elif name == "count_activations":
        from kbench.counting.activations import count_activations as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __getattr__(name: str):
    """``CONVENTIONS`` and ``count_activations``, imported on first use (they import Keras)."""
    return _load(name)


def count(name: str, model, input_shape=None, part: str = "whole") -> Counted:
    """``name``'s count of ``part`` of ``model`` per image (names and parts validated by the caller)."""
    conventions = globals().get("CONVENTIONS") or _load("CONVENTIONS")
    return conventions[name].count(model, input_shape, part)
