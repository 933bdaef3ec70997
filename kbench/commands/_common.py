"""Argument parsing and output helpers shared by the subcommands."""

from __future__ import annotations

import ast
import json
import sys
from typing import Any, Iterable, Mapping, Sequence

from kbench.csvio import write_text_atomic
from kbench.errors import UsageError

FORMATS = ("table", "json", "csv")


def parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """``["width_multiplier=0.5", "plugins=[{...}]"]`` -> kwargs; values are Python/JSON literals."""
    kwargs: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--set {item!r} must look like KEY=VALUE with KEY a Python identifier")
        kwargs[key] = parse_literal(text)
    return kwargs


def parse_literal(text: str) -> Any:
    text = text.strip()
    lowered = {"true": True, "false": False, "null": None, "none": None}
    if text.lower() in lowered:
        return lowered[text.lower()]
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError):
            continue
    return text  # a bare word: a string option such as config=D


def parse_int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{what} {text!r} must be comma-separated positive integers") from None
    if not values or any(v <= 0 for v in values):
        raise UsageError(f"{what} {text!r} must be comma-separated positive integers")
    return values


def parse_input_size(text: str | None) -> tuple[int, int] | None:
    """``"224"`` or ``"224,320"`` (H,W) or ``"224x320"`` -> (h, w)."""
    if text is None:
        return None
    parts = text.replace("x", ",").split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"--input-size {text!r} must be H or H,W with positive integers") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or any(v <= 0 for v in values):
        raise UsageError(f"--input-size {text!r} must be H or H,W with positive integers")
    return values[0], values[1]


def add_format_arguments(parser, default="table"):
    parser.add_argument("--format", choices=FORMATS, default=default, help="output format (default: %(default)s)")
    parser.add_argument("--out", help="write the output to this file instead of standard output")


def format_table(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    rows = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(r[i]) for r in rows if r[i]) for i in range(len(columns))]

    def fmt(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    lines = [fmt(list(columns)), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


def emit(text: str, out: str | None):
    """Write ``text`` to ``out`` (atomically) or to standard output."""
    if out:
        write_text_atomic(out, text)
    else:
        sys.stdout.write(text)
