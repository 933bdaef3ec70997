"""``kbench list``: registered models with their family, paper, default input and published figures.

Read from the zoo's index (``kbench.models.zoo_index``): no Keras import, so it costs about what
``kbench --version`` costs."""

from __future__ import annotations

import json

from kbench.commands._common import add_output_arguments, check_out, format_table, write
from kbench.common.csvio import to_csv_text
from kbench.common.humanize import natural_key
from kbench.errors import UsageError

NAME = "list"
HELP = "list the registered models"
COLUMNS = ("model", "family", "paper", "year", "default_input_shape", "min_input_size", "reported_params",
           "reported_macs")


def add_arguments(parser):
    parser.add_argument("--family", help="only this family")
    add_output_arguments(parser)


def models(family=None) -> list[dict]:
    """Every model's metadata (``ModelSpec.metadata()``) in natural order (resnet18 before
    resnet101); ``family`` filters (an unknown family is a UsageError)."""
    from kbench.models import zoo_index

    listed = zoo_index.load()
    if family is not None:
        families = sorted({entry["family"] for entry in listed})
        if family not in families:
            raise UsageError(f"unknown family {family!r}; known families: {', '.join(families)}")
        listed = [entry for entry in listed if entry["family"] == family]
    return sorted(listed, key=lambda entry: natural_key(entry["name"]))


def row(entry) -> dict:
    """One model's table row; ``reported_*``: its primary published figure (``Reported.primary``)."""
    paper = entry["paper"] or {}
    primary = next((r for r in entry["reported"] if r["primary"]), {})
    return {
        "model": entry["name"],
        "family": entry["family"],
        "paper": paper.get("title", ""),
        "year": str(paper.get("year", "")),
        "default_input_shape": "x".join(map(str, entry["default_input_shape"])),
        "min_input_size": "x".join(map(str, entry["min_input_size"])),
        "reported_params": _count(primary.get("params")),
        "reported_macs": _count(primary.get("macs")),
    }


def _count(value):
    """A published count as an integer where it is one (a rounded 4.089e9 is 4089000000)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def run(args) -> int:
    check_out(args)
    listed = models(args.family)
    if args.format == "json":
        text = json.dumps(listed, indent=2) + "\n"
    elif args.format == "csv":
        text = to_csv_text(COLUMNS, [{k: "" if v is None else v for k, v in row(e).items()} for e in listed])
    else:
        text = format_table(COLUMNS, [row(e) for e in listed], args.format)
    write(text, args)
    return 0
