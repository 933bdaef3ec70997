"""``kbench list``: registered models with their family, paper and default input."""

from __future__ import annotations

import json

from kbench.models import registry
from kbench.commands._common import add_output_arguments, check_out, format_table, write
from kbench.common.csvio import to_csv_text
from kbench.common.humanize import natural_key

NAME = "list"
HELP = "list the registered models"
COLUMNS = ("model", "family", "paper", "year", "default_input_shape", "min_input_size")


def add_arguments(parser):
    parser.add_argument("--family", help="only this family")
    add_output_arguments(parser)


def rows(family=None):
    """One row per model, in natural order (resnet18 before resnet101)."""
    for name in sorted(registry.list_models(family), key=natural_key):
        spec = registry.get_spec(name)
        yield {
            "model": name,
            "family": spec.family,
            "paper": spec.paper.title if spec.paper else "",
            "year": str(spec.paper.year) if spec.paper else "",
            "default_input_shape": "x".join(map(str, spec.default_input_shape)),
            "min_input_size": "x".join(map(str, spec.min_input_size)),
        }


def run(args) -> int:
    check_out(args)
    listed = list(rows(args.family))
    if args.format == "json":
        text = json.dumps([registry.get_spec(r["model"]).metadata() for r in listed], indent=2) + "\n"
    elif args.format == "csv":
        text = to_csv_text(COLUMNS, listed)
    else:
        text = format_table(COLUMNS, listed, args.format)
    write(text, args)
    return 0
