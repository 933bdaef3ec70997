"""``kbench compare BASE.csv NEW.csv``: is NEW slower than BASE, configuration by configuration?"""

from __future__ import annotations

from kbench.commands._common import add_output_arguments, check_out, write
from kbench.commands._nightly import add_verdict_arguments, parse_verdict_arguments, render
from kbench.nightly.compare import COLUMNS, compare_files

NAME = "compare"
HELP = "compare two sweep CSVs: faster / slower / same / inconclusive / not_comparable per configuration (exit 1 if any is slower)"


def add_arguments(parser):
    parser.allow_abbrev = False  # a prefix of a flag is an error, not that flag
    parser.add_argument("base", metavar="BASE.csv", help="the reference sweep CSV (e.g. last night's)")
    parser.add_argument("new", metavar="NEW.csv", help="the sweep CSV to judge (e.g. tonight's)")
    add_verdict_arguments(parser)
    parser.add_argument("--ignore-env", default="", metavar="COLUMNS",
                        help="comma list of environment columns whose difference still allows a comparison "
                             "(e.g. keras_version, to measure an upgrade)")
    add_output_arguments(parser)


def run(args) -> int:
    threshold, alpha = parse_verdict_arguments(args)
    ignore_env = tuple(c.strip() for c in args.ignore_env.split(",") if c.strip())
    check_out(args, (args.base, args.new))
    comparison = compare_files(args.base, args.new, threshold, alpha, ignore_env)
    text = render(COLUMNS, comparison.rows, args.format, comparison.summary(),
                  extra_json={"base": comparison.base, "new": comparison.new, "threshold": threshold,
                              "alpha": alpha, "counts": comparison.counts()})
    write(text, args)
    return 1 if comparison.regressions else 0
