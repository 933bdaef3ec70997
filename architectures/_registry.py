"""The model table: every registered builder and its metadata, as plain data.

This module only *records* models; looking them up, validating arguments and building
them is kbench's job (``kbench.models.registry``). Keeping the table here lets each family file
declare its variants next to its builder (timm's ``@register_model``) without the zoo
depending on the harness.

Two ways to register, both ending in the same ``ModelSpec``:

* as a decorator on a zero-argument-logic entry point::

      @register_model(family="lenet", paper=Paper("Gradient-based learning...", 1998))
      def lenet5(input_shape=(32, 32, 1), num_classes=10, **kwargs): ...

* as data, a preset over a shared builder (variants are configuration, not code)::

      register_model("resnet50", builder=resnet, preset=dict(depth=50), family="resnet", ...)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping


@dataclasses.dataclass(frozen=True)
class Paper:
    title: str
    year: int
    url: str = ""


@dataclasses.dataclass(frozen=True)
class Reported:
    """A published figure and where it comes from.

    ``macs`` are multiply-accumulates (the papers' "FLOPs"/"mult-adds"); ``params`` follow the
    torchvision convention (trainable parameters, BN moving statistics excluded) unless
    ``convention`` says otherwise.

    ``exactness`` says how the figure relates to the registered build (checked by
    tests/models/test_reported.py):

    * ``"exact"``: an exact count of this build in kbench's conventions (params to the unit,
      trainable unless ``params_total``; MACs as ``kbench.counting.macs.count_macs`` counts them);
    * ``"rounded"``: a figure of this build printed at lower precision (``25.0e6``, ``4.23e9``);
      it must agree to its last printed (non-zero) digit;
    * ``"derived"``: not comparable to the unit: another layout or counting convention, a
      figure computed from other figures, or one the notes show to conflict; kept for
      provenance, and checked within ``tolerance`` when one is given.

    ``primary`` marks the one figure a spec reports as its reference (``ModelSpec.primary_reported``);
    a spec with figures has exactly one.
    """

    params: int | float | None = None
    macs: int | float | None = None
    source: str = ""
    convention: str = ""
    input_size: tuple[int, int] | None = None
    exactness: str = ""
    primary: bool = False
    # True when ``params`` counts BN moving statistics too (Keras' count_params, kbench's params_total).
    params_total: bool = False
    # Builder options the figure is for, when not the registered preset (e.g. {"decoder": False}).
    variant: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # For a ``derived`` figure of this very build that misses it for a reason the notes give (a
    # paper's arithmetic, an unstated detail): the relative gap allowed, checked like the others.
    tolerance: float | None = None


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., Any]
    family: str
    paper: Paper | None = None
    preset: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    default_input_shape: tuple[int, int, int] = (224, 224, 3)
    # Smallest spatial size (h, w) the network accepts (set by its total stride and kernels).
    min_input_size: tuple[int, int] = (32, 32)
    # Input height and width must be multiples of this (decoders that re-align strided features).
    input_multiple: int = 1
    default_num_classes: int = 1000
    reported: tuple[Reported, ...] = ()
    # Free-form notes: discrepancies with the paper, which reading of an ambiguous table was taken.
    notes: tuple[str, ...] = ()
    # Size used by the fast test suite (None: the default input shape).
    test_input_size: tuple[int, int] | None = None

    @property
    def primary_reported(self) -> Reported | None:
        """The spec's reference figure (the one marked ``primary``), or None without figures."""
        return next((r for r in self.reported if r.primary), None)

    def metadata(self) -> dict[str, Any]:
        """A JSON-friendly view of everything but the builder."""
        return {
            "name": self.name,
            "family": self.family,
            "paper": dataclasses.asdict(self.paper) if self.paper else None,
            "preset": dict(self.preset),
            "default_input_shape": list(self.default_input_shape),
            "min_input_size": list(self.min_input_size),
            "input_multiple": self.input_multiple,
            "default_num_classes": self.default_num_classes,
            "reported": [dataclasses.asdict(r) for r in self.reported],
            "notes": list(self.notes),
        }


MODEL_SPECS: dict[str, ModelSpec] = {}

EXACTNESS = ("exact", "rounded", "derived")


def _check_reported(model_name: str, reported: tuple[Reported, ...]) -> None:
    """Every figure states its exactness; a spec with figures has exactly one primary."""
    for figure in reported:
        if figure.exactness not in EXACTNESS:
            raise ValueError(f"{model_name}: Reported.exactness must be one of {EXACTNESS}, "
                             f"got {figure.exactness!r} ({figure.source})")
        if figure.tolerance is not None and figure.exactness != "derived":
            raise ValueError(f"{model_name}: only a derived figure has a tolerance ({figure.source})")
    primaries = sum(figure.primary for figure in reported)
    if reported and primaries != 1:
        raise ValueError(f"{model_name}: exactly one Reported must be primary, found {primaries}")


def register_model(name: str | None = None, *, builder: Callable[..., Any] | None = None, **fields):
    """Record a model. Used as ``@register_model(...)`` or called with ``builder=``."""

    def record(fn: Callable[..., Any]) -> Callable[..., Any]:
        model_name = name or fn.__name__
        if model_name in MODEL_SPECS:
            raise ValueError(f"model {model_name!r} is registered twice")
        for key in ("reported", "notes"):
            if key in fields and not isinstance(fields[key], tuple):
                fields[key] = tuple(fields[key]) if isinstance(fields[key], list) else (fields[key],)
        spec = ModelSpec(name=model_name, builder=fn, **fields)
        _check_reported(model_name, spec.reported)
        MODEL_SPECS[model_name] = spec
        return fn

    if builder is not None:
        if name is None:
            raise ValueError("register_model(builder=...) needs a name")
        record(builder)
        return builder
    return record
