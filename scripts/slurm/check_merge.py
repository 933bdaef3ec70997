"""Does a merged sweep cover its plan exactly once?

    python scripts/slurm/check_merge.py MERGED.csv SHARD.csv ... -- SWEEP ARGUMENTS

The plan is computed by kbench itself from the same arguments the job array was given (parsed by
``kbench sweep``'s own parser, resolved and expanded as ``kbench sweep`` does, without running
anything), so no list of configurations is written down anywhere. Checks:

* the merged file has one row per key and its keys are exactly the plan's keys;
* the shards are disjoint and together hold exactly the plan (each configuration measured once,
  on one array task);
* every merged row is ``ok``.

Prints one line (``8 rows merged from shards of 4+2+2 rows, plan covered exactly once, 0 duplicates, all ok``) and exits 0,
or prints what is wrong on stderr and exits 1.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

# kbench's own definitions: the only kbench names this script uses.
from kbench.cli import build_parser  # `kbench sweep`'s argument parser
from kbench.commands.sweep import build_spec  # its arguments -> SweepSpec, as `kbench sweep` does
from kbench.results.merge import read_input  # a sweep CSV of this version, checked
from kbench.results.schema import row_key  # a written row's key
from kbench.running.plan import plan, resolve  # the planned configurations


def plan_keys(sweep_args: list[str]) -> list[tuple[str, ...]]:
    """The keys of the unsharded plan of ``kbench sweep SWEEP_ARGS`` (nothing is measured)."""
    with tempfile.TemporaryDirectory() as scratch:
        args = build_parser().parse_args(["sweep", *sweep_args, "--out", str(Path(scratch) / "plan.csv")])
        spec = build_spec(args)
        return [config.key for config in plan(resolve(spec))]


def describe(key: tuple[str, ...]) -> str:
    return "|".join(key)


def check(merged: str, shards: list[str], sweep_args: list[str]) -> tuple[list[str], str]:
    """(problems, summary)."""
    problems = []
    planned = plan_keys(sweep_args)
    if len(set(planned)) != len(planned):
        problems.append("the plan itself repeats a key")
    wanted = set(planned)

    rows = read_input(merged, unique_keys=False)  # repeated keys are counted below
    counts = Counter(row_key(row) for row in rows)
    duplicates = sum(n - 1 for n in counts.values())
    if duplicates:
        problems.append(f"{duplicates} duplicate rows in {merged}: "
                        + ", ".join(describe(k) for k, n in counts.items() if n > 1))
    missing = [k for k in planned if k not in counts]
    extra = [k for k in counts if k not in wanted]
    if missing:
        problems.append(f"{len(missing)} planned configurations missing from {merged}: "
                        + ", ".join(describe(k) for k in missing))
    if extra:
        problems.append(f"{len(extra)} rows of {merged} not in the plan: " + ", ".join(describe(k) for k in extra))
    not_ok = [row for row in rows if row["status"] != "ok"]
    for row in not_ok:
        problems.append(f"not ok: {describe(row_key(row))}: {row['status']} {row.get('error', '')[:200]}")

    owner: dict[tuple[str, ...], str] = {}
    sizes = []
    for shard in shards:
        shard_rows = read_input(shard)
        sizes.append(len(shard_rows))
        for row in shard_rows:
            key = row_key(row)
            if key in owner:
                problems.append(f"{describe(key)} measured twice: in {owner[key]} and {shard}")
            owner[key] = shard
    if set(owner) != wanted:
        problems.append(f"the shards hold {len(owner)} configurations, not the plan's {len(wanted)} "
                        f"({len(wanted - set(owner))} missing, {len(set(owner) - wanted)} extra)")

    summary = (f"{len(rows)} rows merged from shards of {'+'.join(map(str, sizes))} rows, "
               f"plan covered exactly once, {duplicates} duplicates, "
               f"{'all ok' if not not_ok else f'{len(not_ok)} not ok'}")
    return problems, summary


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    split = argv.index("--")
    merged, shards, sweep_args = argv[0], argv[1:split], argv[split + 1:]
    problems, summary = check(merged, shards, sweep_args)
    for problem in problems:
        print(f"check_merge: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
