"""Argument parsing and output helpers shared by the subcommands."""

from __future__ import annotations

import sys
from typing import Any, Iterable, Mapping, Sequence

from kbench.common import humanize, outputs, validate

FORMATS = ("table", "markdown", "latex", "json", "csv")  # the first three: kbench.common.humanize.TABLE_FORMATS


def parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """``["width_multiplier=0.5", "plugins=[{...}]"]`` -> kwargs (``kbench.common.validate.parse_set``)."""
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
    """Before any work: --out must be a new path or (with --force) a regular file (``kbench.common.outputs``)."""
    if getattr(args, "out", None):
        outputs.check_output(args.out, "--out", overwrite=getattr(args, "force", False))


def format_table(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], fmt: str = "table", totals=None) -> str:
    """A table for people (``kbench.common.humanize.render_table``: 25.56M, unit in the header)."""
    return humanize.render_table(columns, list(rows), fmt, totals=totals)


def emit(text: str, out: str | None, force: bool = True):
    """Write ``text`` to ``out`` (atomically, through a symlink, never over a device or, unless
    ``force``, an existing file: ``kbench.common.outputs.write_text``) or to standard output."""
    if out:
        outputs.write_text(out, text, "--out", overwrite=force)
    else:
        sys.stdout.write(text)
