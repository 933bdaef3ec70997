"""Argument parsing and output helpers shared by the subcommands."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from kbench.common import humanize, outputs, validate
from kbench.errors import UsageError

FORMATS = ("table", "markdown", "latex", "json", "csv")  # the first three: kbench.common.humanize.TABLE_FORMATS


def add_model_arguments(parser, input_size_default: str | None = None, input_size: bool = True):
    """How a model is built: ``--input-size``, ``--num-classes``, ``--set`` and ``--import``,
    declared once for every command that builds one (``model_options`` reads them back)."""
    if input_size:
        default = f"default: {input_size_default}" if input_size_default else "default: the model's default input"
        parser.add_argument("--input-size", default=input_size_default,
                            help=f"H, H,W or H,W,C (also HxW, HxWxC; {default})")
    parser.add_argument("--num-classes", type=int, help="classifier outputs (default: the model's)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="builder option (repeatable)")
    parser.add_argument("--import", action="append", dest="imports", metavar="MODULE",
                        help="import MODULE first (registers a saved model's custom classes; repeatable)")


def model_options(args) -> dict[str, Any]:
    """The validated options of ``add_model_arguments``, as ``registry.resolve`` takes them."""
    options = {"num_classes": args.num_classes, "variant": validate.parse_set(args.set),
               "imports": _modules(args.imports)}
    if hasattr(args, "input_size"):
        options["input_shape"] = validate.input_size(args.input_size)
    return options


def _modules(names: Sequence[str] | None) -> tuple[str, ...]:
    for name in names or ():
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name):
            raise UsageError(f"--import {name!r} must be a module name such as mynets or pkg.mynets")
    return tuple(names or ())


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
