"""Command-line and config values, parsed and checked one way for every command.

Every parser here raises ``UsageError`` with one line that names the flag, the bad value and
what is allowed, before any work is done. Numbers must be finite (``nan``/``inf`` are refused),
integers must be integers (a TOML ``2.5`` or ``true`` is not a batch size).

``--set KEY=VALUE`` values are Python/JSON literals (``32``, ``0.5``, ``[1, 2]``, ``"D"``,
``true``/``null``). A bare word (``relu``, ``D``, ``bottleneck``) is taken as a string, because
the zoo's string options (activation, config, block, shuffle_method) are written that way;
``check_variant`` then refuses a string for an option whose default is not a string (so
``groups=abc`` is an error, not a row). Anything else that does not parse (``[1,``, ``{a``,
``1.2.3``) is refused: "cannot parse --set groups=[1,: ...".
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import re
from typing import Any, Mapping, Sequence

from kbench.errors import UsageError

_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_LITERAL_WORDS = {"true": True, "false": False, "null": None, "none": None}


class BareWord(str):
    """A ``--set`` value given without quotes (kept as a string; see ``check_variant``)."""


def parse_literal(text: str, what: str = "--set", key: str = "") -> Any:
    raw = text
    text = text.strip()
    if text.lower() in _LITERAL_WORDS:
        return _LITERAL_WORDS[text.lower()]
    errors = []
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            errors.append(exc)
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{what} {key}={raw}: {value} is not a finite number")
        return value
    if _BARE_WORD.fullmatch(text):
        return BareWord(text)
    detail = " ".join(str(errors[-1]).split()) if errors else "empty value"
    shown = f"{key}={raw}" if key else raw
    raise UsageError(f"cannot parse {what} {shown}: not a Python/JSON literal ({detail}); "
                     f"write numbers, lists like [1,2], quoted strings or plain words")


def parse_set(items: Sequence[str] | None, what: str = "--set") -> dict[str, Any]:
    """``["width_multiplier=0.5", "plugins=[{...}]"]`` -> kwargs; values are Python/JSON literals."""
    kwargs: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"{what} {item!r} must look like KEY=VALUE with KEY a Python identifier")
        if key in kwargs:
            raise UsageError(f"{what} {key} is given twice")
        kwargs[key] = parse_literal(text, what, key)
    return kwargs


def variant_from_config(table: Any, what: str) -> dict[str, Any]:
    """Builder options given as a table (TOML ``set``, a Python dict): option -> value, already
    typed; keys must be identifiers and numbers finite. ``what`` names the value in errors."""
    if not isinstance(table, dict):
        raise UsageError(f"{what} must be a table of builder options (KEY = VALUE), "
                         f"got {type(table).__name__} {table!r}")
    for key, value in table.items():
        if not str(key).isidentifier():
            raise UsageError(f"{what}: key {key!r} is not a Python identifier")
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{what}: {key} = {value} is not a finite number")
    return dict(table)


def _option_defaults(spec) -> dict[str, Any]:
    defaults = {n: p.default for n, p in inspect.signature(spec.builder).parameters.items()
                if p.default is not inspect.Parameter.empty}
    defaults.update(dict(getattr(spec, "preset", {}) or {}))
    return defaults


def check_variant(request, what: str = "--set") -> None:
    """Refuse a string for an option whose default (preset or builder default) is a number, a
    bool, a list or a dict: ``groups=abc`` is a typo, not a request for a string."""
    if not request.variant:
        return
    defaults = _option_defaults(request.spec)
    for key, value in dict(request.variant).items():
        if not isinstance(value, str) or key not in defaults:
            continue
        default = defaults[key]
        if default is None or isinstance(default, str):
            continue
        raise UsageError(f"{what} {key}={value}: {request.name}'s {key} takes a {type(default).__name__} "
                         f"(default {default!r}), not the string {str(value)!r}")


def finite_float(value: Any, what: str, *, positive: bool = False, minimum: float | None = None) -> float:
    if isinstance(value, bool):
        raise UsageError(f"{what} {value!r} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} {value!r} must be a number") from None
    if not math.isfinite(number):
        raise UsageError(f"{what} {value!r} must be a finite number")
    if positive and number <= 0:
        raise UsageError(f"{what} {value!r} must be positive")
    if minimum is not None and number < minimum:
        raise UsageError(f"{what} {value!r} must be >= {minimum:g}")
    return number


_ASCII_INTEGER = re.compile(r"[+-]?[0-9]+")  # not \d: int() takes '١٢' and '1_0', kbench does not


def integer(value: Any, what: str, *, minimum: int | None = None) -> int:
    """An int from the command line (a string of ASCII digits) or a config (an int, not a float/bool)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise UsageError(f"{what} {value!r} must be an integer")
    if isinstance(value, str):
        text = value.strip()
        if not _ASCII_INTEGER.fullmatch(text):
            raise UsageError(f"{what} {value!r} must be an integer")
        value = int(text)
    if not isinstance(value, int):
        raise UsageError(f"{what} {value!r} must be an integer")
    if minimum is not None and value < minimum:
        raise UsageError(f"{what} {value!r} must be an integer >= {minimum}")
    return value


def int_list(value: Any, what: str) -> list[int]:
    """``"1,8,32"`` or ``[1, 8, 32]`` -> positive integers (ASCII digits; no empty item: ``1,,2``
    is a typo, not ``1,2``)."""
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    shown = value if isinstance(value, str) else ",".join(map(str, items)) if isinstance(value, (list, tuple)) else value
    message = f"{what} {shown!r} must be comma-separated positive integers"
    values = []
    for item in items:
        if isinstance(item, str):
            if not _ASCII_INTEGER.fullmatch(item.strip()):
                raise UsageError(message + (" (an empty item)" if not item.strip() else ""))
            values.append(int(item.strip()))
        elif isinstance(item, int) and not isinstance(item, bool):
            values.append(item)
        else:
            raise UsageError(message)
    if not values or any(v <= 0 for v in values):
        raise UsageError(message)
    return values


def word_list(value: Any, what: str) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` -> words (a config list must hold strings)."""
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, str) for v in value):
            raise UsageError(f"{what} {value!r} must be a list of strings")
        items = list(value)
    elif isinstance(value, str):
        items = value.split(",")
    else:
        raise UsageError(f"{what} {value!r} must be a comma-separated string or a list of strings")
    return [v.strip() for v in items if v.strip()]


_INPUT_SIZE_PARTS = re.compile(r"\s*[xX,]\s*")
_DECIMAL = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() accepts '²', which int() refuses


def input_size(value: Any, what: str = "--input-size") -> tuple[int, ...] | None:
    """An input size, the one parser for every command and config: ``"224"`` (square),
    ``"224,320"`` / ``"224x320"`` (H,W), ``"16,16,2"`` / ``"16x16x2"`` (H,W,C), an int, or a list
    of 1-3 ints -> ``(h, w)`` or ``(h, w, c)``. None stays None."""
    if value is None:
        return None
    message = f"{what} {value!r} must be H, H,W or H,W,C (also HxW, HxWxC) with positive integers"
    if isinstance(value, bool):
        raise UsageError(message)
    if isinstance(value, int):
        parts = [value]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    elif isinstance(value, str):
        parts = _INPUT_SIZE_PARTS.split(value.strip())
    else:
        raise UsageError(message)
    values = []
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, (int, str)):
            raise UsageError(message)
        text = str(part).strip()
        if not _DECIMAL.fullmatch(text) or len(text) > 9:  # int() refuses 4300+ digits: no traceback
            raise UsageError(message)
        values.append(int(text))
    if len(values) == 1:
        values *= 2
    if not 2 <= len(values) <= 3 or any(v <= 0 for v in values):
        raise UsageError(message)
    return tuple(values)


def one_of(value: Any, what: str, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise UsageError(f"{what} {value!r}: allowed: {', '.join(allowed)}")
    return value


def check_types(table: Mapping[str, Any], types: Mapping[str, tuple], source: str) -> None:
    """Each known key of a config table has one of its allowed types."""
    for key, value in table.items():
        allowed = types.get(key)
        if allowed is None:
            continue
        if isinstance(value, bool) and bool not in allowed:
            ok = False
        else:
            ok = isinstance(value, allowed)
        if not ok:
            names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in allowed)
            raise UsageError(f"{key!r} in {source} must be {names}, got {type(value).__name__} {value!r}")


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a table",
               bool: "true/false"}
