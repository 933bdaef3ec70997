"""``kbench merge OUT.csv IN1.csv IN2.csv ...``: the CSVs of a sharded sweep joined into one
(one row per key; conflicting rows are reported and the newest ``ok`` row wins): ``kbench.results.merge``."""

from __future__ import annotations

import sys

NAME = "merge"
HELP = "join sweep CSVs (e.g. the --shard K/N parts of one sweep) into one CSV with one row per key"


def add_arguments(parser):
    parser.allow_abbrev = False
    parser.add_argument("out", metavar="OUT.csv", help="the merged CSV to write (refused if it exists, unless --force)")
    parser.add_argument("inputs", nargs="+", metavar="IN.csv", help="sweep CSVs to merge (only read)")
    parser.add_argument("--force", action="store_true", help="replace OUT.csv if it exists")


def run(args) -> int:
    from kbench.results.merge import merge_files

    result = merge_files(args.out, args.inputs, force=args.force)
    for conflict in result.conflicts:
        print(conflict.describe(), file=sys.stderr)
    print(f"kbench: merged {result.rows_read} rows from {len(result.inputs)} files into {len(result.rows)} rows "
          f"in {args.out} ({len(result.conflicts)} keys with conflicting rows)", file=sys.stderr)
    return 0
