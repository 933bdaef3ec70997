"""Looking up and building registered models.

The table itself is ``architectures._registry.MODEL_SPECS`` (filled by each family module);
this module is the one way to query it and to build from it, with the argument checks that
turn mistakes into ``UsageError`` (exit code 2 on the CLI).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
from typing import Any, Mapping

from kbench.errors import InputSizeError, UnknownModelError, UsageError


def _specs():
    from kbench._quiet import quiet_import

    quiet_import("keras")  # imported lazily (and quietly): the zoo imports Keras and its backend
    return quiet_import("architectures").MODEL_SPECS


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, sorted; ``family`` filters (unknown family -> UsageError)."""
    specs = _specs()
    if family is not None:
        families = list_families()
        if family not in families:
            raise UsageError(f"unknown family {family!r}; known families: {', '.join(families)}")
        return sorted(name for name, spec in specs.items() if spec.family == family)
    return sorted(specs)


def list_families() -> list[str]:
    return sorted({spec.family for spec in _specs().values()})


def get_spec(name: str):
    specs = _specs()
    if name in specs:
        return specs[name]
    close = difflib.get_close_matches(name, list(specs), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "; run 'kbench list' for the names"
    raise UnknownModelError(f"unknown model {name!r}{hint}")


def resolve_models(selector: str) -> list[str]:
    """``all``, ``family:F`` or a comma-separated list of names -> validated model names."""
    if selector == "all":
        return list_models()
    if selector.startswith("family:"):
        return list_models(selector.split(":", 1)[1])
    names = [n.strip() for n in selector.split(",") if n.strip()]
    if not names:
        raise UsageError(f"no model named in {selector!r}")
    for n in names:
        get_spec(n)
    return names


def normalize_input_shape(spec, input_shape=None) -> tuple[int, int, int]:
    """Fill in and validate ``(h, w, c)`` against the model's minimum input size and input multiple."""
    if input_shape is None:
        return tuple(spec.default_input_shape)
    shape = tuple(input_shape)
    if len(shape) == 2:
        shape = (*shape, spec.default_input_shape[2])
    if len(shape) != 3 or not all(isinstance(d, int) for d in shape):
        raise InputSizeError(f"input shape {input_shape!r} must be (height, width[, channels]) integers")
    h, w, c = shape
    if h <= 0 or w <= 0 or c <= 0:
        raise InputSizeError(f"input shape {shape} must be positive")
    min_h, min_w = spec.min_input_size
    if h < min_h or w < min_w:
        raise InputSizeError(f"input size {h}x{w} is too small for {spec.name}: it needs at least {min_h}x{min_w}")
    multiple = spec.input_multiple
    if h % multiple or w % multiple:
        raise InputSizeError(f"input size {h}x{w} is not allowed for {spec.name}: height and width must be "
                             f"multiples of {multiple}")
    return shape


def builder_kwargs(spec) -> set[str]:
    params = inspect.signature(spec.builder).parameters
    return {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def build(name: str, input_shape=None, num_classes: int | None = None, **variant_kwargs: Any):
    """Build a registered model as a ``keras.Model``.

    ``variant_kwargs`` override the model's preset (e.g. ``width_multiplier=0.5``); an
    unknown key raises ``UsageError`` listing the allowed ones.
    """
    spec = get_spec(name)
    shape = normalize_input_shape(spec, input_shape)
    allowed = builder_kwargs(spec) - {"input_shape", "num_classes"}
    unknown = sorted(set(variant_kwargs) - allowed)
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r} for {name}; allowed: {', '.join(sorted(allowed))}")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes <= 0):
        raise UsageError(f"num_classes must be a positive integer, got {num_classes!r}")
    kwargs = {**spec.preset, **variant_kwargs}
    from architectures.errors import ConfigError, InputShapeError  # loaded with the zoo by get_spec

    try:
        return spec.builder(input_shape=shape, num_classes=num_classes or spec.default_num_classes, **kwargs)
    except ConfigError as exc:
        # A builder option the builder rejects up front (a bad --set value). Any other exception
        # from a builder is a bug in it and propagates (a traceback, not exit code 2).
        raise UsageError(f"{exc.option}={_short(exc.value)} is not allowed for {name}: {_one_line(exc.allowed)}") from None
    except InputShapeError as exc:
        # An input size that this configuration cannot take (e.g. a map too small for a pool).
        raise InputSizeError(f"cannot build {name} at input {shape} with {kwargs or 'defaults'}: "
                             f"{_one_line(str(exc))}") from None


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else repr(value)
    return _one_line(text, 120)


@dataclasses.dataclass(frozen=True)
class ModelRequest:
    """One model to measure, resolved and validated once at the edge (CLI or Python API).

    Everything downstream (profiling, sweeps, workers) takes a request and never re-validates:
    ``spec`` is the registry entry, ``input_shape`` is the full ``(h, w, c)``, ``num_classes`` is
    the value the model is built with, ``variant`` the ``--set`` overrides of the preset.
    """

    spec: Any
    input_shape: tuple[int, int, int]
    num_classes: int
    variant: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def variant_text(self) -> str:
        """The variant as canonical JSON ("" for the preset itself): a stable key for CSV rows."""
        return json.dumps(dict(self.variant), sort_keys=True) if self.variant else ""

    def build(self):
        """The ``keras.Model``; shape/option mistakes were caught by ``resolve``."""
        return build(self.name, input_shape=self.input_shape, num_classes=self.num_classes, **dict(self.variant))

    def to_payload(self) -> dict[str, Any]:
        """A JSON-friendly form for a worker subprocess (``from_payload`` reverses it)."""
        return {"model": self.name, "input_shape": list(self.input_shape), "num_classes": self.num_classes,
                "variant": dict(self.variant)}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "ModelRequest":
        return cls(get_spec(payload["model"]), tuple(payload["input_shape"]), int(payload["num_classes"]),
                   dict(payload.get("variant") or {}))


def resolve(name: str, input_shape=None, num_classes: int | None = None,
            variant: Mapping[str, Any] | None = None) -> ModelRequest:
    """Validate a request once (name, input size, classes, ``--set`` keys) -> ``ModelRequest``.

    Raises ``UsageError`` (exit 2) for anything the user got wrong; nothing is built.
    """
    spec = get_spec(name)
    shape = normalize_input_shape(spec, input_shape)
    variant = dict(variant or {})
    allowed = builder_kwargs(spec) - {"input_shape", "num_classes"}
    unknown = sorted(set(variant) - allowed)
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r} for {name}; allowed: {', '.join(sorted(allowed))}")
    if num_classes is None:
        num_classes = spec.default_num_classes
    elif isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
        raise UsageError(f"num_classes must be a positive integer, got {num_classes!r}")
    return ModelRequest(spec, tuple(shape), num_classes, variant)
