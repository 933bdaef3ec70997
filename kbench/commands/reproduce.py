"""``kbench reproduce``: every printed number of the seed tables beside kbench's measurement."""

from __future__ import annotations

import functools
import json
import sys

from kbench.common import outputs
from kbench.common.csvio import to_csv_text
from kbench.errors import UsageError

NAME = "reproduce"
HELP = "put every number of the papers' tables (kbench/papers/tables) beside kbench's measurement, with a verdict"
FORMATS = ("markdown", "csv", "json", "latex")
# Columns of the grouped markdown/latex tables (table and source head each group).
GROUP_COLUMNS = ("row", "quantity", "reported_text", "reported", "measured", "unit", "convention", "ratio", "verdict",
                 "reason")
SPEED_COLUMNS = ("speed_model", "speed_batch_size", "speed_images_per_s", "measured_speed_ratio", "reported_speed_ratio",
                 "speed_ordering")


def add_arguments(parser):
    parser.add_argument("tables", nargs="*", metavar="TABLE", help="table ids (see --list), or 'all' (the default)")
    parser.add_argument("--list", action="store_true", help="list the tables and exit")
    parser.add_argument("--format", default="markdown", help=f"one of {', '.join(FORMATS)} (default: markdown)")
    parser.add_argument("--out", help="write the report to this file (refused if it exists, unless --force)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    parser.add_argument("--speed", action="store_true",
                        help="also run each table's speed rows' models in one sweep on this machine and compare "
                             "the ratios to the table's baseline row with the published ratios")
    parser.add_argument("--speed-iters", type=int, default=10, metavar="N",
                        help="with --speed: timed iterations per model (default 10)")
    parser.add_argument("--speed-batch-size", type=int, default=1, metavar="N",
                        help="with --speed: batch size of the sweep (default 1)")


def _selected_tables(names):
    from kbench.papers.loader import load_table, load_tables, table_ids

    if not names or names == ["all"]:
        return load_tables()
    if "all" in names:
        raise UsageError("TABLE: 'all' cannot be combined with table ids")
    known = table_ids()
    for name in names:
        if name not in known:
            raise UsageError(f"unknown table {name!r}; known tables: {', '.join(known)}")
    return [load_table(name) for name in dict.fromkeys(names)]


def run(args) -> int:
    from kbench.models import registry
    from kbench.common.validate import check_variant, integer, one_of

    one_of(args.format, "--format", FORMATS)
    iters = integer(args.speed_iters, "--speed-iters", minimum=1)
    batch_size = integer(args.speed_batch_size, "--speed-batch-size", minimum=1)
    if args.list:
        if args.tables:
            raise UsageError("--list takes no TABLE")
        tables = _selected_tables([])
    else:
        tables = _selected_tables(args.tables)
    if args.out:
        outputs.check_output(args.out, "--out", overwrite=args.force)
    if args.list:
        rows = [{"table": t.id, "title": t.title, "source": f"{t.source}:{t.lines[0]}-{t.lines[1]}",
                 "numbers": len(t.printed_values())} for t in tables]
        _emit(_render_list(rows, args.format), args)
        return 0
    for table in tables:  # every model a row names is registered, before anything is built
        for row in table.rows:
            if row.model:
                check_variant(registry.resolve(row.model, row.input_size, row.num_classes, dict(row.set)), f"{table.id}: set")
    from kbench.papers.reproduce import reproduce, verdict_counts

    report = reproduce(tables, progress=lambda text: print(f"kbench: measuring {text}", file=sys.stderr))
    formulas = [] if args.format == "csv" else _formula_checks(tuple(t.id for t in tables))
    if args.speed:
        from kbench.papers.speed import add_speed_ratios

        add_speed_ratios(tables, report, iters=iters, batch_size=batch_size)
    _emit(render(report, args.format, verdict_counts(report), speed=args.speed, formulas=formulas), args)
    return 0


@functools.lru_cache(maxsize=8)
def _formula_checks(table_ids):
    """The printed formulas of these tables checked on real layers (once per process: they are fixed)."""
    from kbench.papers.loader import load_table
    from kbench.papers.reproduce import check_formulas

    return check_formulas([load_table(t) for t in table_ids])


def _emit(text, args):
    if args.out:
        outputs.write_text(args.out, text, "--out", overwrite=args.force)
    else:
        sys.stdout.write(text)


def _render_list(rows, fmt):
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["table", "title", "source", "numbers"])
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return to_csv_text(tuple(frame.columns), rows)
    if fmt == "latex":
        return frame.to_latex(index=False, escape=True)
    return frame.to_markdown(index=False) + "\n"


def _latex_escape(text: str) -> str:
    for char in "&%$#_{}":
        text = text.replace(char, "\\" + char)
    return text


def render(report, fmt, counts, *, speed=False, formulas=()) -> str:
    """The report as csv/json (one row per printed number) or markdown/latex grouped by table; json,
    markdown and latex add the printed formulas checked on real layers (``formulas``)."""
    import pandas as pd

    from kbench.papers.loader import REPORT_COLUMNS

    columns = REPORT_COLUMNS + (SPEED_COLUMNS if speed else ())
    if fmt == "json":
        return json.dumps({"verdicts": counts, "rows": [{c: r.get(c) for c in columns} for r in report],
                           "formulas": list(formulas)},
                          indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "csv":
        return to_csv_text(columns, [{c: "" if r.get(c) is None else r.get(c) for c in columns} for r in report])
    frame = pd.DataFrame(report, columns=columns)
    summary = pd.DataFrame([counts])
    group_columns = GROUP_COLUMNS + (SPEED_COLUMNS if speed else ())
    parts = []
    if fmt == "latex":
        parts.append("% kbench reproduce: verdicts over all printed numbers\n" + summary.to_latex(index=False, escape=True))
        for (table, source), group in frame.groupby(["table", "source"], sort=False):
            counts_line = ", ".join(f"{v} {n}" for v, n in group["verdict"].value_counts().items())
            parts.append(f"% {table} ({source}): {counts_line}\n"
                         + group[list(group_columns)].to_latex(index=False, na_rep="", longtable=True, escape=True,
                                                               caption=_latex_escape(f"{table} ({source}): {counts_line}")))
        if formulas:
            parts.append("% printed formulas on real layers\n" + pd.DataFrame(formulas).to_latex(
                index=False, na_rep="", longtable=True, escape=True, caption="Printed formulas checked on real Keras layers"))
        return "\n".join(parts)
    parts.append("## Verdicts\n\n" + summary.to_markdown(index=False) + "\n")
    for (table, source), group in frame.groupby(["table", "source"], sort=False):
        counts_line = ", ".join(f"{v} {n}" for v, n in group["verdict"].value_counts().items())
        parts.append(f"## {table} ({source})\n\n{counts_line}\n\n"
                     + group[list(group_columns)].astype(object).fillna("").to_markdown(index=False, disable_numparse=True) + "\n")
    if formulas:
        parts.append("## Printed formulas on real Keras layers\n\n"
                     + pd.DataFrame(formulas).astype(object).fillna("").to_markdown(index=False, disable_numparse=True) + "\n")
    return "\n".join(parts)
