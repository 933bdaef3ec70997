"""``kbench nightly NEW.csv``: what run_all.sh does after its sweep (``kbench.nightly.run``)."""

from __future__ import annotations

import sys

from kbench.results import stats
from kbench.commands._nightly import add_verdict_arguments, parse_verdict_arguments, render
from kbench.nightly.compare import COLUMNS
from kbench.nightly.run import run_night

NAME = "nightly"
HELP = ("compare a night's sweep CSV with the previous run of its machine, update the history and the "
        "report, print a summary (exit 1 if a configuration is slower)")


def add_arguments(parser):
    parser.allow_abbrev = False  # a prefix of a flag is an error, not that flag
    parser.add_argument("new", metavar="NEW.csv", help="tonight's sweep CSV (run_all.sh: results/sweep-<UTC time>.csv)")
    parser.add_argument("--results", metavar="DIR", help="directory of the nightly CSVs (default: NEW.csv's)")
    parser.add_argument("--report", metavar="DIR", help="report directory (default: DIR/report)")
    parser.add_argument("--tag", default="sweep", help="file name prefix of the nightly CSVs (default: %(default)s)")
    add_verdict_arguments(parser)


def run(args) -> int:
    threshold, alpha = parse_verdict_arguments(args)
    night = run_night(args.new, args.results, args.report, args.tag, threshold, alpha)
    if night.comparison is not None:
        shown = [row for row in night.comparison.rows if row["verdict"] != stats.SAME]
        if shown:
            sys.stdout.write(render(COLUMNS, shown, "table"))
            sys.stdout.write("\n")
    print(night.summary)
    return night.exit_code
