"""Counting conventions as data: each is a named rule table over ``kbench.counting.layer_walk`` (which layer
kinds count, and how much per element), with a docstring in its module saying what it counts.

``CATALOG`` names the operation-counting conventions (unit, what each counts, how its tool prints a
count) without importing Keras; ``CONVENTIONS`` maps a name to its operation-counting
``Convention`` (loaded on first use, as are the names below: the rule tables import Keras);
``count(name, model, input_shape, part)`` counts one model per image. ``PARAMETER_CONVENTIONS``
are the ways a printed parameter count counts (``params``: torchvision, keras,
weights_and_biases, and the notes' own); ``ALL`` is one vocabulary of both, by name, as the paper
tables name them. ``part`` is an explicit option (``PARTS``): ``whole``, ``features`` (no
classifier, global pooling kept) or ``backbone`` (neither). ``count_activations`` gives the output
elements of conv/matmul layers (fvcore's activations).
"""

from __future__ import annotations

import importlib

from kbench.counting.conventions._base import CATALOG, Convention, ConventionInfo
from kbench.counting.parts import PARTS, Counted

__all__ = ["ALL", "CATALOG", "CONVENTIONS", "PARAMETER_CONVENTIONS", "PARTS", "Convention", "ConventionInfo",
           "Counted", "count", "count_activations"]


def _load(name: str):
    if name == "CONVENTIONS":
        value = {key: importlib.import_module(f"{__name__}.{key}").CONVENTION for key in CATALOG}
    elif name == "PARAMETER_CONVENTIONS":
        from kbench.counting.conventions import notes, params

        value = {c.name: c for c in (*params.CONVENTIONS, notes.CONVENTION)}
    elif name == "ALL":
        value = {**_get("CONVENTIONS"), **_get("PARAMETER_CONVENTIONS")}
    elif name == "count_activations":
        from kbench.counting.activations import count_activations as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def _get(name: str):
    return globals().get(name) or _load(name)


def __getattr__(name: str):
    """``CONVENTIONS``, ``PARAMETER_CONVENTIONS``, ``ALL`` and ``count_activations``, imported on
    first use (they import Keras)."""
    return _load(name)


def count(name: str, model, input_shape=None, part: str = "whole") -> Counted:
    """``name``'s count of ``part`` of ``model`` per image (names and parts validated by the caller)."""
    return _get("CONVENTIONS")[name].count(model, input_shape, part)
