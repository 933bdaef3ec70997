"""Argument parsing and output helpers shared by the subcommands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from kbench.common import humanize, outputs, validate
from kbench.errors import UsageError

FORMATS = ("table", "markdown", "latex", "json", "csv")  # the first three: kbench.common.humanize.TABLE_FORMATS


def parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """``["width_multiplier=0.5", "plugins=[{...}]"]`` -> kwargs (``kbench.common.validate.parse_set``)."""
    return validate.parse_set(items)


def parse_literal(text: str) -> Any:
    return validate.parse_literal(text)


def parse_int_list(text: str, what: str) -> list[int]:
    return validate.int_list(text, what)


def parse_input_size(text: str | None) -> tuple[int, ...] | None:
    """``"224"``, ``"224,320"``/``"224x320"`` (H,W) or ``"16,16,2"``/``"16x16x2"`` (H,W,C) -> (h, w[, c])
    (``kbench.common.validate.input_size``)."""
    return validate.input_size(text)


def add_output_arguments(parser, formats: Sequence[str] = FORMATS, default: str = "table",
                         out_help: str = "write the output to this file instead of standard output"):
    """``--format``, ``--out`` and ``--force``: declared once for every command that writes a
    document (``check_out`` before any work, ``write`` at the end)."""
    parser.add_argument("--format", choices=formats, default=default, help="output format (default: %(default)s)")
    parser.add_argument("--out", help=out_help)
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")


def check_out(args, inputs: Iterable[str | Path] = ()) -> None:
    """Before any work: --out must be a new path or (with --force) a regular file
    (``kbench.common.outputs``), and never one of the command's input files, which are only read."""
    if not getattr(args, "out", None):
        return
    target = Path(args.out).resolve()
    for path in inputs:
        if Path(path).resolve() == target:
            raise UsageError(f"--out {args.out!r} is one of the input files; choose another file")
    outputs.check_output(args.out, "--out", overwrite=getattr(args, "force", False))


def format_table(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], fmt: str = "table", totals=None) -> str:
    """A table for people (``kbench.common.humanize.render_table``: 25.56M, unit in the header)."""
    return humanize.render_table(columns, list(rows), fmt, totals=totals)


def write(text: str, args) -> None:
    """The output to --out (atomically, through a symlink, never over a device or, unless --force,
    an existing file: ``kbench.common.outputs.write_text``) or to standard output."""
    if getattr(args, "out", None):
        outputs.write_text(args.out, text, "--out", overwrite=getattr(args, "force", False))
    else:
        sys.stdout.write(text)
