"""``kbench report DIR --out DIR/report/``: a static HTML page with PNG plots of the nightly sweeps."""

from __future__ import annotations

from pathlib import Path

from kbench.commands._nightly import add_tag_argument, add_verdict_arguments, parse_verdict_arguments
from kbench.nightly.report import INDEX, build_report

NAME = "report"
HELP = "write a static HTML report (PNG plots, compare table, history with steps) of a results directory"


def add_arguments(parser):
    parser.allow_abbrev = False  # a prefix of a flag is an error, not that flag
    parser.add_argument("directory", metavar="DIR", help="results directory holding the nightly sweep-<UTC date[time]>.csv files")
    parser.add_argument("--out", help="output directory (default: DIR/report)")
    add_tag_argument(parser)
    add_verdict_arguments(parser)
    parser.add_argument("--force", action="store_true",
                        help="write into an existing non-empty directory that holds no kbench report "
                             "(nothing else there is touched)")


def run(args) -> int:
    threshold, alpha = parse_verdict_arguments(args)
    out = Path(args.out) if args.out else Path(args.directory) / "report"
    report = build_report(args.directory, out, args.tag, args.force, threshold, alpha)
    print(f"wrote {out / INDEX} ({len(report.images)} plots)")
    return 0
