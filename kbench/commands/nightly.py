"""``kbench nightly NEW.csv``: what run_all.sh does after its sweep (``kbench.nightly.run``)."""

from __future__ import annotations

import sys

from kbench.results import stats
from kbench.commands._nightly import add_tag_argument, add_verdict_arguments, parse_verdict_arguments, render
from kbench.common import validate
from kbench.nightly import confirm
from kbench.nightly.compare import COLUMNS
from kbench.nightly.run import run_night

NAME = "nightly"
HELP = ("compare a night's sweep CSV with the previous run of its machine, re-measure every suspected "
        "regression, update the history and the report, print a summary (exit 1 if a configuration is slower)")


def add_arguments(parser):
    parser.allow_abbrev = False  # a prefix of a flag is an error, not that flag
    parser.add_argument("new", metavar="NEW.csv", help="tonight's sweep CSV (run_all.sh: results/sweep-<UTC time>.csv)")
    parser.add_argument("--results", metavar="DIR", help="directory of the nightly CSVs (default: NEW.csv's)")
    parser.add_argument("--report", metavar="DIR", help="report directory (default: DIR/report)")
    add_tag_argument(parser)
    add_verdict_arguments(parser)
    parser.add_argument("--confirm-budget", default=f"{confirm.DEFAULT_BUDGET_S:g}", metavar="SECONDS",
                        help="time for re-measuring the suspected regressions, each interleaved with a control in "
                             "a fresh worker (default: %(default)s); a suspect left when it runs out is "
                             "inconclusive, never a regression")


def run(args) -> int:
    threshold, alpha = parse_verdict_arguments(args)
    budget = validate.finite_float(args.confirm_budget, "--confirm-budget", minimum=0)
    night = run_night(args.new, args.results, args.report, args.tag, threshold, alpha, confirm_budget_s=budget)
    if night.comparison is not None:
        shown = [row for row in night.comparison.rows if row["verdict"] != stats.SAME or row["confirmation"]]
        if shown:
            sys.stdout.write(render(COLUMNS, shown, "table"))
            sys.stdout.write("\n")
    print(night.summary)
    return night.exit_code
