"""Argument parsing and output helpers shared by the subcommands."""

from __future__ import annotations

import sys
from typing import Any, Iterable, Mapping, Sequence

from kbench import outputs, validate

FORMATS = ("table", "json", "csv")


def parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """``["width_multiplier=0.5", "plugins=[{...}]"]`` -> kwargs (``kbench.validate.parse_set``)."""
    return validate.parse_set(items)


def parse_literal(text: str) -> Any:
    return validate.parse_literal(text)


def parse_int_list(text: str, what: str) -> list[int]:
    return validate.int_list(text, what)


def parse_input_size(text: str | None) -> tuple[int, int] | None:
    """``"224"`` or ``"224,320"`` (H,W) or ``"224x320"`` -> (h, w)."""
    return validate.input_size(text)


def add_format_arguments(parser, default="table"):
    parser.add_argument("--format", choices=FORMATS, default=default, help="output format (default: %(default)s)")
    parser.add_argument("--out", help="write the output to this file instead of standard output")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")


def check_out(args) -> None:
    """Before any work: --out must be a new path or (with --force) a regular file (``kbench.outputs``)."""
    if getattr(args, "out", None):
        outputs.check_output(args.out, "--out", overwrite=getattr(args, "force", False))


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


def emit(text: str, out: str | None, force: bool = True):
    """Write ``text`` to ``out`` (atomically, through a symlink, never over a device or, unless
    ``force``, an existing file: ``kbench.outputs.write_text``) or to standard output."""
    if out:
        outputs.write_text(out, text, "--out", overwrite=force)
    else:
        sys.stdout.write(text)
