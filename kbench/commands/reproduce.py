"""``kbench reproduce``: every number of the papers' tables beside kbench's measurement."""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from pathlib import Path

from kbench.commands._common import add_output_arguments, check_out, write
from kbench.common.csvio import to_csv_text
from kbench.errors import UsageError

NAME = "reproduce"
HELP = "put every number of the papers' tables (kbench/tables, or your own PATH.toml) beside kbench's measurement"
FORMATS = ("markdown", "csv", "json", "latex")
SPEED_COLUMNS = ("speed_model", "speed_batch_size", "speed_images_per_s", "measured_speed_ratio", "reported_speed_ratio",
                 "speed_ordering")
LIST_COLUMNS = ("table", "title", "source", "printed_numbers", "rows", "coverage")


def add_arguments(parser):
    parser.add_argument("tables", nargs="*", metavar="TABLE",
                        help="table ids (see --list), a table file PATH.toml of your own, or 'all' (the default)")
    parser.add_argument("--list", action="store_true",
                        help="list the tables (source, printed numbers, rows: their coverage) and exit")
    add_output_arguments(parser, formats=FORMATS, default="markdown",
                         out_help="write the report to this file (refused if it exists, unless --force)")
    parser.add_argument("--speed", action="store_true",
                        help="also run each table's speed rows' models in one sweep on this machine and compare "
                             "the ratios to the table's baseline row with the published ratios")
    parser.add_argument("--speed-iters", type=int, default=10, metavar="N",
                        help="with --speed: timed iterations per model (default 10)")
    parser.add_argument("--speed-batch-size", type=int, default=1, metavar="N",
                        help="with --speed: batch size of the sweep (default 1)")


def _selected_tables(names):
    from kbench.papers.loader import load_table, load_tables, parse_table, table_ids

    if not names or names == ["all"]:
        return load_tables()
    if "all" in names:
        raise UsageError("TABLE: 'all' cannot be combined with table ids")
    known = table_ids()
    tables = []
    for name in dict.fromkeys(names):
        if name.endswith(".toml") or "/" in name or Path(name).is_file():
            path = Path(name)
            if not path.is_file():
                raise UsageError(f"TABLE: no table file {name!r} (a PATH.toml of your own, or one of: {', '.join(known)})")
            tables.append(parse_table(path))
        elif name in known:
            tables.append(load_table(name))
        else:
            raise UsageError(f"unknown table {name!r}; known tables: {', '.join(known)} (or a PATH.toml of your own)")
    ids = [t.id for t in tables]
    if len(set(ids)) != len(ids):
        raise UsageError(f"TABLE: two tables share the id {next(i for i in ids if ids.count(i) > 1)!r}")
    return tables


def run(args) -> int:
    from kbench.models import registry
    from kbench.common.validate import check_variant, integer

    iters = integer(args.speed_iters, "--speed-iters", minimum=1)
    batch_size = integer(args.speed_batch_size, "--speed-batch-size", minimum=1)
    if args.list and args.tables:
        raise UsageError("--list takes no TABLE")
    tables = _selected_tables(args.tables)
    check_out(args, [table.path for table in tables if table.path])
    if args.list:
        rows = [{"table": t.id, "title": t.title, "source": t.source, "printed_numbers": t.printed_numbers,
                 "rows": len(t.printed_values()), "coverage": t.coverage} for t in tables]
        write(_render_list(rows, args.format), args)
        return 0
    from kbench.papers.reproduce import compared_count, required_models, reproduce, verdict_counts

    for model, input_size, num_classes, variant in required_models(tables):  # all registered, before building
        check_variant(registry.resolve(model, input_size, num_classes, variant), f"{model}: set")
    report = reproduce(tables, progress=lambda text: print(f"kbench: measuring {text}", file=sys.stderr))
    formulas = [] if args.format == "csv" else _formula_checks(tuple(str(t.path) for t in tables))
    if args.speed:
        from kbench.papers.speed import add_speed_ratios

        add_speed_ratios(tables, report, iters=iters, batch_size=batch_size)
    counts = verdict_counts(report)
    write(render(tables, report, args.format, counts, speed=args.speed, formulas=formulas), args)
    summary = ", ".join(f"{verdict} {n}" for verdict, n in counts.items() if n)
    print(f"kbench: {compared_count(counts)} of {len(report)} printed numbers compared ({summary})", file=sys.stderr)
    return 0


@functools.lru_cache(maxsize=8)
def _formula_checks(paths):
    """The printed formulas of these table files checked on real layers (once per process)."""
    from kbench.papers.loader import parse_table
    from kbench.papers.reproduce import check_formulas

    return check_formulas([parse_table(Path(path)) for path in paths])


def _render_list(rows, fmt):
    import pandas as pd

    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return to_csv_text(LIST_COLUMNS, [{c: "" if r[c] is None else r[c] for c in LIST_COLUMNS} for r in rows])
    frame = pd.DataFrame(rows, columns=list(LIST_COLUMNS)).astype(object).fillna("")
    if fmt == "latex":
        from kbench.papers.render import latex_text

        body = [" & ".join(latex_text(str(r[c])) for c in LIST_COLUMNS) + r" \\" for r in frame.to_dict("records")]
        return "\n".join([r"\begin{longtable}{lp{4cm}p{6cm}rrl}", r"\toprule",
                          " & ".join(c.replace("_", r"\_") for c in LIST_COLUMNS) + r" \\", r"\midrule", *body,
                          r"\bottomrule", r"\end{longtable}"]) + "\n"
    return frame.to_markdown(index=False, disable_numparse=True) + "\n"


def _citation(table) -> dict:
    return {key: value for key, value in dataclasses.asdict(table.citation).items() if value}


def render(tables, report, fmt, counts, *, speed=False, formulas=()) -> str:
    """The report as csv/json (one row per printed number, every column) or as markdown/latex: each
    table laid out as printed with kbench's figures beside the paper's (``kbench.papers.render``)."""
    from kbench.papers.loader import REPORT_COLUMNS
    from kbench.papers import render as paper_render
    from kbench.papers.reproduce import compared_count

    columns = REPORT_COLUMNS + (SPEED_COLUMNS if speed else ())
    if fmt == "json":
        return json.dumps({"verdicts": counts, "compared": compared_count(counts), "printed_numbers": len(report),
                           "tables": [{"table": t.id, "title": t.title, "citation": _citation(t),
                                       "printed_numbers": t.printed_numbers, "rows": len(t.printed_values()),
                                       "coverage": t.coverage} for t in tables],
                           "rows": [{c: r.get(c) for c in columns} for r in report], "formulas": list(formulas)},
                          indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "csv":
        return to_csv_text(columns, [{c: "" if r.get(c) is None else r.get(c) for c in columns} for r in report])
    if fmt == "latex":
        return paper_render.latex(tables, report, counts, formulas=formulas)
    return paper_render.markdown(tables, report, counts, formulas=formulas, speed=speed, speed_columns=SPEED_COLUMNS)
