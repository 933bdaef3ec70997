"""``kbench compare BASE.csv NEW.csv``: is NEW slower than BASE, configuration by configuration?"""

from __future__ import annotations

from kbench import stats
from kbench.commands._nightly import add_output_arguments, check_out, parse_fraction, render, write
from kbench.compare import COLUMNS, compare_files

NAME = "compare"
HELP = "compare two sweep CSVs: faster / slower / same / not_comparable per configuration (exit 1 if any is slower)"


def add_arguments(parser):
    parser.allow_abbrev = False  # a prefix of a flag is an error, not that flag
    parser.add_argument("base", metavar="BASE.csv", help="the reference sweep CSV (e.g. last night's)")
    parser.add_argument("new", metavar="NEW.csv", help="the sweep CSV to judge (e.g. tonight's)")
    parser.add_argument("--threshold", default=f"{stats.DEFAULT_THRESHOLD:.0%}",
                        help="smallest change of the median samples/s that counts (default: %(default)s)")
    parser.add_argument("--alpha", default=str(stats.DEFAULT_ALPHA),
                        help="significance level of the Mann-Whitney U test on the rounds (default: %(default)s)")
    parser.add_argument("--ignore-env", default="", metavar="COLUMNS",
                        help="comma list of environment columns whose difference still allows a comparison "
                             "(e.g. keras_version, to measure an upgrade)")
    add_output_arguments(parser)


def run(args) -> int:
    threshold = parse_fraction(args.threshold, "--threshold")
    alpha = parse_fraction(args.alpha, "--alpha")
    ignore_env = tuple(c.strip() for c in args.ignore_env.split(",") if c.strip())
    check_out(args, (args.base, args.new))
    comparison = compare_files(args.base, args.new, threshold, alpha, ignore_env)
    text = render(COLUMNS, comparison.rows, args.format, comparison.summary(),
                  extra_json={"base": comparison.base, "new": comparison.new, "threshold": threshold,
                              "alpha": alpha, "counts": comparison.counts()})
    write(text, args)
    return 1 if comparison.regressions else 0
