"""``kbench history DIR``: steps over the whole history of a results directory's nightly sweeps."""

from __future__ import annotations

import math

from kbench.results import stats
from kbench.commands._common import add_output_arguments, check_out, write
from kbench.commands._nightly import add_tag_argument, parse_fraction, render
from kbench.errors import UsageError
from kbench.nightly.history import SERIES_COLUMNS, STEP_COLUMNS, load_history
from kbench.results.frame import nightly_files

NAME = "history"
HELP = "time series of the nightly sweep CSVs in a directory, with the steps (change points) found in each"


def add_arguments(parser):
    parser.allow_abbrev = False  # a prefix of a flag is an error, not that flag
    parser.add_argument("directory", metavar="DIR", help="results directory holding the nightly sweep-<UTC date[time]>.csv files")
    add_tag_argument(parser)
    parser.add_argument("--host", help="only rows measured on this host")
    parser.add_argument("--min-points", type=int, default=stats.DEFAULT_MIN_POINTS,
                        help="nights needed on each side of a step (default: %(default)s)")
    parser.add_argument("--min-change", default=f"{stats.DEFAULT_MIN_CHANGE:.0%}",
                        help="smallest step of the median samples/s reported (default: %(default)s)")
    parser.add_argument("--noise-factor", type=float, default=stats.DEFAULT_NOISE_FACTOR,
                        help="a step must also be this many times the series' night-to-night noise "
                             "(default: %(default)s)")
    parser.add_argument("--series", action="store_true",
                        help="list every configuration's series (nights, latest value, noise, steps) "
                             "instead of the steps")
    add_output_arguments(parser)


def run(args) -> int:
    if args.min_points < 1:
        raise UsageError(f"--min-points {args.min_points} must be a positive integer")
    if not (math.isfinite(args.noise_factor) and args.noise_factor > 0):
        raise UsageError(f"--noise-factor {args.noise_factor} must be a finite positive number")
    min_change = parse_fraction(args.min_change, "--min-change")
    check_out(args, [path for _, path in nightly_files(args.directory, args.tag)])
    history = load_history(args.directory, args.tag, args.host, args.min_points, min_change, args.noise_factor)
    if args.series:
        columns, rows = SERIES_COLUMNS, history.series_rows()
    else:
        columns, rows = STEP_COLUMNS, history.steps()
    write(render(columns, rows, args.format, history.summary(),
                 extra_json={"directory": history.directory, "nights": history.nights}), args)
    # A step stays in the history for good: failing on it would fail every later night. The
    # nightly regression gate is `kbench compare` (tonight against last night).
    return 0
