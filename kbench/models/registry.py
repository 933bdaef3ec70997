"""Looking up and building models: the zoo's registered models and the user's own.

The table itself is ``architectures._registry.MODEL_SPECS`` (filled by each family module);
this module is the one way to query it and to build from it, with the argument checks that
turn mistakes into ``UsageError`` (exit code 2 on the CLI).

A model that is not in the zoo is named by where it comes from (``UserModelSpec``):

* a saved model, ``PATH.keras`` (or ``.h5``), loaded with ``keras.saving.load_model``;
* a factory, ``package.module:function``, a callable returning a ``keras.Model``; ``--set``
  options are its keyword arguments, and it gets ``input_shape``/``num_classes`` only when its
  signature takes them;
* (Python API) a ``keras.Model`` object.

Its input shape is the model's own where fixed (a subclassed model's is the shape it was built
or first called with); ``--input-size`` may only fill in what the model leaves open (or be
passed to a factory that takes ``input_shape``). Any rank: a pair is (height, width) of a
3-channel image unless the model declares a rank-2 input.

A user's custom classes must be registered with ``keras.saving.register_keras_serializable`` (Keras'
safe mode stays on). Loading a saved model first imports the module each custom class of the file
names (Keras records it) when it is found in the working directory or on ``PYTHONPATH``; other
modules are named with ``--import MODULE`` (``UserModelSpec.imports``). A model object sent to
the sweep's workers carries its classes' modules the same way, so every process that builds a
request imports what it needs (``ModelRequest.from_payload``).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from kbench.errors import InputSizeError, UnknownModelError, UsageError


def _specs():
    from kbench.models.zoo_index import zoo_specs

    return zoo_specs()


class IndexedSpec:
    """A registered model as the zoo's index (``kbench.models.zoo_index``) describes it: what
    naming, validating and planning read (name, family, input rules, default classes) without
    importing the zoo. Anything else (the builder, the preset, the published figures) is the
    registry's spec, loaded on first use."""

    FIELDS = ("name", "family", "default_input_shape", "min_input_size", "input_multiple", "default_num_classes")

    def __init__(self, metadata: Mapping[str, Any]):
        for field in self.FIELDS:  # JSON has lists where the spec has tuples (input shapes)
            value = metadata[field]
            setattr(self, field, tuple(value) if isinstance(value, list) else value)

    def __getattr__(self, attr: str):  # only for what the index does not hold
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(get_spec(self.name), attr)

    def __repr__(self) -> str:
        return f"IndexedSpec({self.name!r})"


_indexed: dict[str, IndexedSpec] = {}


def _known():
    """Name -> spec of every registered model: the registry once the zoo is imported (a model
    registered at run time included), else the zoo's index, which costs no Keras import (a CLI
    process that only names, validates and plans models: a sweep's parent, ``compare``)."""
    if "architectures" in sys.modules:
        return _specs()
    if not _indexed:
        from kbench.models import zoo_index

        _indexed.update((m["name"], IndexedSpec(m)) for m in zoo_index.load())
    return _indexed


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, sorted; ``family`` filters (unknown family -> UsageError)."""
    specs = _known()
    if family is not None:
        families = list_families()
        if family not in families:
            raise UsageError(f"unknown family {family!r}; known families: {', '.join(families)}")
        return sorted(name for name, spec in specs.items() if spec.family == family)
    return sorted(specs)


def list_families() -> list[str]:
    return sorted({spec.family for spec in _known().values()})


def _unknown(name: str, names) -> UnknownModelError:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "; run 'kbench list' for the names"
    return UnknownModelError(f"unknown model {name!r}{hint}")


def get_spec(name: str):
    """The registry's ``ModelSpec`` of ``name`` (imports the zoo); ``UnknownModelError`` with the
    closest names."""
    specs = _specs()
    if name in specs:
        return specs[name]
    raise _unknown(name, specs)


def known_spec(name: str):
    """``name``'s spec as far as naming and validating need it, without importing the zoo when
    it is not imported yet (``IndexedSpec``); ``UnknownModelError`` as ``get_spec``."""
    specs = _known()
    if name in specs:
        return specs[name]
    raise _unknown(name, specs)


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
    if not isinstance(name, str) or is_user_selector(name):
        raise UsageError(f"kbench.build takes a registered model name, got {name!r}; "
                         "use kbench.profile or kbench.load_model for your own models")
    return resolve(name, input_shape, num_classes, variant_kwargs).build()


def _call_builder(spec, shape, num_classes, variant):
    """The builder call behind every registered build: arguments were validated by ``resolve``;
    only the builder's own refusals remain to be turned into usage errors."""
    kwargs = {**spec.preset, **variant}
    from architectures.errors import ConfigError, InputShapeError  # loaded with the zoo by get_spec

    try:
        return spec.builder(input_shape=shape, num_classes=num_classes, **kwargs)
    except ConfigError as exc:
        # A builder option the builder rejects up front (a bad --set value). Any other exception
        # from a builder is a bug in it and propagates (a traceback, not exit code 2).
        raise UsageError(f"{exc.option}={_short(exc.value)} is not allowed for {spec.name}: "
                         f"{_one_line(exc.allowed)}") from None
    except InputShapeError as exc:
        # An input size that this configuration cannot take (e.g. a map too small for a pool).
        raise InputSizeError(f"cannot build {spec.name} at input {shape} with {kwargs or 'defaults'}: "
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
    ``spec`` is the registry entry, ``input_shape`` is the full shape without the batch axis (``(h, w, c)`` for images), ``num_classes`` is
    the value the model is built with, ``variant`` the ``--set`` overrides of the preset.
    """

    spec: Any
    input_shape: tuple[int, ...]  # (h, w, c) for the zoo; a user's model may have another rank
    num_classes: int | None  # None: a user's model that fixes its own outputs
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
        if isinstance(self.spec, UserModelSpec):
            # As a Functional model at the request's input: timing needs its inputs and outputs.
            from kbench.models.views import functional_view

            return functional_view(self.spec.build(self.input_shape, self.num_classes, self.variant), self.input_shape)
        return _call_builder(self.spec, self.input_shape, self.num_classes, dict(self.variant))

    def to_payload(self) -> dict[str, Any]:
        """A JSON-friendly form for a worker subprocess (``from_payload`` reverses it). A user's
        model adds ``source`` (how to rebuild it, with a digest of its file so that the profile
        cache sees an edit); a ``keras.Model`` object cannot travel (``UserModelSpec.saved``)."""
        payload = {"model": self.name, "input_shape": list(self.input_shape), "num_classes": self.num_classes,
                   "variant": dict(self.variant)}
        if isinstance(self.spec, UserModelSpec):
            payload["source"] = self.spec.source()
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "ModelRequest":
        classes = payload["num_classes"]
        if "source" in payload:
            source = payload["source"]
            spec = UserModelSpec(payload["model"], source["kind"], source["target"],
                                 accepts=frozenset(source.get("accepts") or ()),
                                 imports=tuple(tuple(pair) for pair in source.get("imports") or ()))
        else:
            spec = known_spec(payload["model"])
        return cls(spec, tuple(payload["input_shape"]), None if classes is None else int(classes),
                   dict(payload.get("variant") or {}))


def resolve(name, input_shape=None, num_classes: int | None = None,
            variant: Mapping[str, Any] | None = None, *, imports=()) -> ModelRequest:
    """Validate a request once (name, input size, classes, ``--set`` keys) -> ``ModelRequest``.

    ``name`` is a registered name, a user's model selector (``PATH.keras``, ``module:factory``)
    or a ``keras.Model``. Raises ``UsageError`` (exit 2) for anything the user got wrong; a
    registered model is not built, a user's model is built (or loaded) once to learn its input.
    ``imports``: modules a user's model needs (``--import MODULE`` names; imported here, and by
    every process that builds the request).
    """
    if not isinstance(name, str) or is_user_selector(name):
        return resolve_user_model(name, input_shape, num_classes, variant, imports=imports)
    import_modules((module, "") for module in imports)  # named, so imported (and checked) for any model
    spec = known_spec(name)
    shape = normalize_input_shape(spec, input_shape)
    variant = dict(variant or {})
    if variant:  # (the builder's signature: the zoo is imported only for options)
        allowed = builder_kwargs(spec) - {"input_shape", "num_classes"}
        unknown = sorted(set(variant) - allowed)
        if unknown:
            raise UsageError(f"unknown option {unknown[0]!r} for {name}; allowed: {', '.join(sorted(allowed))}")
    if num_classes is None:
        num_classes = spec.default_num_classes
    elif isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
        raise UsageError(f"num_classes must be a positive integer, got {num_classes!r}")
    return ModelRequest(spec, tuple(shape), num_classes, variant)


# ----------------------------------------------------------------------------- the user's own models

USER_FAMILY = "user"
SAVED_MODEL_SUFFIXES = (".keras", ".h5")
_FACTORY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def is_user_selector(text: str) -> bool:
    """A saved model's path (``*.keras``, ``*.h5``) or a ``module:factory``, not a zoo name.
    (``family:F`` is the zoo's family selector, never a module named ``family``.)"""
    return text.endswith(SAVED_MODEL_SUFFIXES) or (bool(_FACTORY.match(text)) and not text.startswith("family:"))


@dataclasses.dataclass(frozen=True)
class UserModelSpec:
    """A model from outside the zoo, with the fields of ``architectures.ModelSpec`` that kbench
    reads (no preset, no published figures, any input size the model accepts)."""

    name: str  # the selector text (rows, resume keys), or a model object's name
    kind: str  # "saved" (a .keras file), "factory" (module:function) or "object" (a keras.Model)
    target: Any  # the path, the "module:function" text, or the model object
    accepts: frozenset = frozenset()  # of input_shape/num_classes, the ones a factory takes
    # Modules to import before building: (module name, its file or ""), see ``import_modules``.
    imports: tuple[tuple[str, str], ...] = ()
    family: str = USER_FAMILY
    preset: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    reported: tuple = ()
    primary_reported = None
    paper = None
    notes: tuple = ()
    min_input_size: tuple[int, int] = (1, 1)
    input_multiple: int = 1
    default_num_classes = None

    @property
    def builder(self) -> Callable[..., Any]:
        """What ``--set`` options are checked against: the factory's signature (a saved model
        or an object takes none)."""
        return _import_factory(self.target) if self.kind == "factory" else (lambda: None)

    def build(self, input_shape=None, num_classes=None, variant: Mapping[str, Any] | None = None):
        if self.kind == "object":
            return self.target
        import_modules(self.imports)
        if self.kind == "saved":
            import_modules((module, "") for module in saved_model_modules(self.target))
            try:
                return load_model(self.target)
            except TypeError as exc:
                missing = re.search(r"Could not locate (?:class|function) '([^']+)'", str(exc))
                if missing is None:
                    raise
                raise UsageError(f"{self.name}: Keras does not know class {missing.group(1)!r}: import the module that "
                                 "defines it with @keras.saving.register_keras_serializable (--import MODULE; one in "
                                 "the working directory or on PYTHONPATH is imported by itself)") from None
        kwargs = dict(variant or {})
        if input_shape is not None and "input_shape" in self.accepts:
            kwargs["input_shape"] = tuple(input_shape)
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        model = self.builder(**kwargs)
        import keras

        if not isinstance(model, keras.Model):
            raise UsageError(f"{self.name} returned {type(model).__name__}, not a keras.Model")
        return model

    def source(self) -> dict[str, Any]:
        """How a worker rebuilds the model, and a digest of what it is built from."""
        if self.kind == "object":
            raise UsageError(f"model object {self.name!r} cannot be sent to a worker: save it "
                             "(model.save('m.keras')) or name a module:factory")
        for module, _ in self.imports:
            if module == "__main__":
                raise UsageError(f"model {self.name!r} has a class defined in __main__, which the sweep's workers "
                                 "cannot import: define it in a module (e.g. mynets.py) and import it from there")
        imports = {"imports": [list(pair) for pair in self.imports]} if self.imports else {}
        if self.kind == "saved":
            path = os.path.abspath(self.target)
            return {"kind": "saved", "target": path, "digest": _file_digest(path), **imports}
        module_file = getattr(sys.modules.get(self.target.partition(":")[0]), "__file__", None)
        return {"kind": "factory", "target": self.target, "accepts": sorted(self.accepts),
                "digest": _file_digest(module_file) if module_file else "", **imports}

    def saved(self, directory, input_shape) -> "UserModelSpec":
        """An object's spec as a saved model in ``directory`` (for workers), same name; a model
        not yet built (no Input layer) is built at ``input_shape`` first, so its weights travel."""
        if self.kind != "object":
            return self
        path = Path(directory) / f"{len(os.listdir(directory))}.keras"
        try:
            if not self.target.built:
                self.target.build((None, *input_shape))
            self.target.save(path)
        except Exception as exc:  # noqa: BLE001 - Keras raises many types for an unsaveable model
            raise UsageError(f"model {self.name!r} cannot be saved for the sweep's workers "
                             f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
                             "give it get_config() or name a module:factory") from None
        return UserModelSpec(self.name, "saved", str(path), imports=self.imports)


def _file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def load_model(path, **kwargs):
    """``keras.saving.load_model`` with every custom layer of the zoo registered first."""
    from kbench.common.quiet import quiet_import

    quiet_import("architectures")  # registers the zoo's serialisable layers
    return quiet_import("keras").saving.load_model(path, **kwargs)


def _import_user_module(module_name: str, what: str):
    """``importlib.import_module``, finding a module of the working directory as ``python -m``
    would, even when kbench runs from an installed script (whose directory, not the cwd, heads
    sys.path). ``UsageError`` naming ``what`` when it cannot be imported."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name.split(".")[0] or os.getcwd() in sys.path:
            raise UsageError(f"cannot import {module_name!r} for {what}: {exc}") from None
        sys.path.append(os.getcwd())
        return _import_user_module(module_name, what)


def _import_factory(target: str):
    module_name, _, attr = target.partition(":")
    module = _import_user_module(module_name, repr(target))
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"{target!r}: module {module_name!r} has no callable {attr!r}")
    return factory


# Modules of the libraries kbench and Keras import themselves: never imported on a file's word.
_OWN_PACKAGES = frozenset({"keras", "keras_hub", "keras_cv", "keras_nlp", "tensorflow", "tf_keras", "builtins",
                           "architectures", "kbench"})


def import_modules(imports) -> None:
    """Import each ``(module, file)`` of ``imports`` not imported yet: by name (as ``python -m``
    would, the working directory included), else from ``file`` under that name (a module that a
    test runner or a script put on its own path). ``UsageError`` if neither works."""
    for module, file in imports:
        if module in sys.modules:
            continue
        if file and os.path.isfile(file) and importlib.util.find_spec(module.split(".")[0]) is None:
            spec = importlib.util.spec_from_file_location(module, file)
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[module] = loaded
            try:
                spec.loader.exec_module(loaded)
            except BaseException:
                del sys.modules[module]
                raise
            continue
        _import_user_module(module, f"the model's classes ({file})" if file else "--import")


def saved_model_modules(path) -> list[str]:
    """The modules of the custom classes a saved ``.keras`` file names (Keras records each
    object's ``module``) that are found in the working directory or on ``PYTHONPATH``, so that
    importing them registers the classes before loading; a module found elsewhere is left to
    ``--import`` (a file never makes kbench import an installed package)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return []  # not a .keras archive (.h5, or damaged): Keras' own loader says what is wrong
    found: dict[str, None] = {}
    pending = [config]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            module = item.get("module")
            if isinstance(module, str) and item.get("registered_name") and _is_user_module(module):
                found[module] = None
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return [module for module in found if _on_user_path(module)]


def _is_user_module(module: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", module)) and module.split(".")[0] not in _OWN_PACKAGES


def _on_user_path(module: str) -> bool:
    """A module whose top-level package is in the working directory or a ``PYTHONPATH`` entry."""
    from importlib.machinery import PathFinder

    paths = [os.getcwd(), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return PathFinder.find_spec(module.split(".")[0], paths) is not None


def custom_class_modules(model) -> tuple[tuple[str, str], ...]:
    """``(module, file)`` of every class of ``model`` and its layers that Keras will look up by
    its registered name when another process loads the model (the user's classes: not Keras',
    not the zoo's)."""
    layers = model._flatten_layers(include_self=True, recursive=True) if hasattr(model, "_flatten_layers") else [model]
    found: dict[tuple[str, str], None] = {}
    for layer in layers:
        module_name = type(layer).__module__
        if _is_user_module(module_name):
            module = sys.modules.get(module_name)
            found[(module_name, os.path.abspath(module.__file__) if getattr(module, "__file__", None) else "")] = None
    return tuple(found)


def _with_imports(spec: "UserModelSpec", imports) -> "UserModelSpec":
    return dataclasses.replace(spec, imports=tuple(dict.fromkeys((*spec.imports, *imports))))


def model_input_shape(model) -> tuple | None:
    """The input shape a model declares with its Input, without the batch axis (entries may be
    None), or None when it declares none (a subclassed model, an unbuilt Sequential). More than one
    input is a UsageError."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    if len(inputs) != 1:
        raise UsageError(f"model {model.name!r} has {len(inputs)} inputs; kbench measures single-input models")
    return tuple(inputs[0].shape[1:])


def built_input_shape(model) -> tuple | None:
    """The shape a model without an Input was built or first called with (Keras records it; a
    saved subclassed model keeps it), without the batch axis; None if unknown or open."""
    if not getattr(model, "built", False):
        return None
    try:
        shape = (model.get_build_config() or {}).get("input_shape")
    except (AttributeError, TypeError, ValueError):
        return None
    if isinstance(shape, (list, tuple)) and len(shape) > 1 and all(isinstance(d, int) for d in shape[1:]):
        return tuple(shape[1:])
    return None


def resolve_user_model(selector, input_shape=None, num_classes=None, variant=None, *, imports=()) -> ModelRequest:
    """A user's model (see the module docstring) -> ``ModelRequest``; built once to read its input.
    ``imports``: module names to import first (``--import``), carried by the request."""
    import keras

    variant = dict(variant or {})
    imports = tuple((module, "") for module in imports)
    import_modules(imports)
    if isinstance(selector, keras.Model):
        spec = UserModelSpec(selector.name, "object", selector, imports=imports)
    elif not isinstance(selector, str):
        raise UsageError(f"a model is a name, a selector or a keras.Model, not {type(selector).__name__}")
    elif selector.endswith(SAVED_MODEL_SUFFIXES):
        if not os.path.isfile(selector):
            raise UnknownModelError(f"no saved model at {selector!r} (a .keras file)")
        spec = UserModelSpec(selector, "saved", selector, imports=imports)
    else:
        params = inspect.signature(_import_factory(selector)).parameters
        spec = UserModelSpec(selector, "factory", selector, imports=imports,
                             accepts=frozenset({"input_shape", "num_classes"} & set(params)))
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        allowed = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        allowed -= {"input_shape", "num_classes"}
        for key in variant:
            if key in ("input_shape", "num_classes"):
                raise UsageError(f"--set {key}: use --{key.replace('_', '-').replace('shape', 'size')} for {selector}")
            if not takes_any and key not in allowed:
                raise UsageError(f"unknown option {key!r} for {selector}; allowed: {', '.join(sorted(allowed)) or 'none'}")
    if spec.kind != "factory" and variant:
        raise UsageError(f"--set {next(iter(variant))}: a saved model or model object takes no builder options")
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
            raise UsageError(f"num_classes must be a positive integer, got {num_classes!r}")
        if "num_classes" not in spec.accepts:
            raise UsageError(f"--num-classes: {spec.name} fixes its own outputs (only a factory with a "
                             "num_classes argument takes it)")
    wanted = None
    if input_shape is not None:
        wanted = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else (input_shape,)
        if not wanted or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in wanted):
            raise InputSizeError(f"input shape {input_shape!r} must be positive integers (height, width[, channels], "
                                 "or the model's own rank)")
    if wanted is not None and len(wanted) == 2 and "input_shape" in spec.accepts:
        default = inspect.signature(spec.builder).parameters["input_shape"].default
        channels = default[-1] if isinstance(default, (tuple, list)) and len(default) == 3 else 3
        wanted = (*wanted, channels)
    try:
        model = spec.build(wanted if "input_shape" in spec.accepts else None, num_classes, variant)
    except (TypeError, ValueError) as exc:
        # The user's factory (or file) refused these arguments: their input, not a kbench bug.
        raise UsageError(f"cannot build {spec.name} with {variant or 'defaults'}: "
                         f"{type(exc).__name__}: {_one_line(str(exc), 200)}") from None
    # The modules of its custom classes travel with the request: every process that builds it
    # (the sweep's workers) imports them first.
    spec = _with_imports(spec, custom_class_modules(model))
    shape = _user_input_shape(spec.name, model_input_shape(model), wanted, built_input_shape(model))
    if spec.kind != "object":
        keras.backend.clear_session()  # built only to read its input; workers and profiles rebuild it
    return ModelRequest(spec, shape, num_classes, variant)


def _user_input_shape(name, declared, wanted, built=None) -> tuple[int, ...]:
    """The request's input shape: the model's own, with ``wanted`` filling what it leaves open. A
    ``wanted`` one entry short of the model's rank leaves out the channels (``H,W``). A model that
    declares none takes ``wanted``, else the shape it was ``built`` with."""
    if declared is None and built is not None:
        if wanted is None:
            return built
        return (*wanted, built[-1]) if len(wanted) == len(built) - 1 else wanted
    if declared is None:
        if wanted is None:
            raise InputSizeError(f"model {name!r} declares no input shape (a subclassed model never built or an "
                                 "unbuilt Sequential): pass --input-size H,W[,C] (Python: input_shape=(h, w, c))")
        return wanted if len(wanted) != 2 else (*wanted, 3)
    if wanted is None:
        if any(d is None for d in declared):
            raise InputSizeError(f"model {name!r} takes input {declared} with open dimensions: pass --input-size "
                                 "H,W (Python: input_shape=(h, w, c))")
        return tuple(int(d) for d in declared)
    full = (*wanted, declared[-1]) if len(wanted) == len(declared) - 1 and declared[-1] is not None else wanted
    if len(full) != len(declared):
        raise InputSizeError(f"input size {'x'.join(map(str, wanted))} does not fit model {name!r}, whose input "
                             f"is {'x'.join(str(d) for d in declared)} ({len(declared)} dimensions)")
    for given, fixed in zip(full, declared):
        if fixed is not None and given != fixed:
            raise InputSizeError(f"input size {'x'.join(map(str, full))} conflicts with model {name!r}, "
                                 f"whose input is fixed at {'x'.join(str(d) for d in declared)}")
    return tuple(full)


# ----------------------------------------------------------------------------- saved models' custom layers

class _ZooLayersAfterKeras:
    """A one-shot import hook: when ``keras`` is first imported, import the zoo too, so that its
    serialisable layers are registered before anyone calls ``keras.saving.load_model``.

    ``import kbench`` installs it (``register_zoo_layers``) instead of importing Keras itself,
    which would make every ``kbench`` command pay Keras' start-up."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        # Stays installed until Keras is actually loaded: TensorFlow asks find_spec("keras")
        # before it imports it.
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _ThenImportZoo(spec.loader)
                return spec
        return None


class _ThenImportZoo:
    """Keras' own loader, followed by ``import architectures`` once Keras is loaded."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):  # everything else (get_resource_reader, is_package, ...) is Keras'
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        for finder in [f for f in sys.meta_path if isinstance(f, _ZooLayersAfterKeras)]:
            sys.meta_path.remove(finder)
        self._loader.exec_module(module)
        _import_zoo()


def _import_zoo():
    try:
        importlib.import_module("architectures")
    except Exception as exc:  # noqa: BLE001 - never break `import keras` for the user
        import warnings

        warnings.warn(f"kbench: the zoo's layers are not registered with Keras ({type(exc).__name__}: {exc}); "
                      "use kbench.load_model", stacklevel=2)


def register_zoo_layers() -> None:
    """Register the zoo's custom layers with Keras now if Keras is loaded, else when it is."""
    if "keras" in sys.modules:
        if "architectures" not in sys.modules:
            _import_zoo()
    elif not any(isinstance(finder, _ZooLayersAfterKeras) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ZooLayersAfterKeras())
