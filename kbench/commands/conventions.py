"""``kbench conventions``: the counting conventions, one line each on what they count."""

from __future__ import annotations

import json

from kbench.commands._common import add_output_arguments, check_out, format_table, write
from kbench.common.csvio import to_csv_text

NAME = "conventions"
HELP = "list the counting conventions (profile --convention) and the parts a count may cover"
COLUMNS = ("convention", "unit", "counts")


def add_arguments(parser):
    add_output_arguments(parser)


def rows():
    """From the catalog: listing the conventions imports no Keras."""
    from kbench.counting.conventions import CATALOG

    return [{"convention": c.name, "unit": c.unit, "counts": c.summary} for c in CATALOG.values()]


def run(args) -> int:
    from kbench.counting.conventions import PARTS

    check_out(args)
    listed = rows()
    if args.format == "json":
        text = json.dumps({"conventions": listed, "parts": PARTS}, indent=2) + "\n"
    elif args.format == "csv":
        text = to_csv_text(COLUMNS, listed)
    else:
        text = format_table(COLUMNS, listed)
        text += "\nparts (--part): " + "; ".join(f"{name}: {what}" for name, what in PARTS.items()) + "\n"
    write(text, args)
    return 0
