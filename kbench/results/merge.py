"""Joining sweep CSVs (the shards of one sweep, ``--shard K/N``) into one: one row per key.

* **Inputs** are read, never written. Each must be a sweep CSV of this version or of an earlier
  one (the header is ``kbench.results.schema.SWEEP_COLUMNS``, or that minus a trailing run of
  ``LATER_COLUMNS``, read with them empty; anything else is a UsageError, exit 2) whose every
  row passes ``schema.row_problem`` and whose every key appears once (``schema.check_rows``): the
  readers' rules, so a merged file is one that compare, history and report read. A torn last
  row (a killed sweep) is left out. Every input is checked before anything is written.
* **One row per key** (``kbench.results.schema.KEY_COLUMNS``). Rows of one key in different
  inputs that are identical (the same file given twice) collapse silently. Rows of one key that differ are a *conflict*:
  it is reported (one stderr line per key, and a count in the summary) and the newest ``ok``
  row wins, "newest" by the ``timestamp`` column (ISO 8601, UTC, as the sweep writes it; ties:
  the later input, then the later row); a key without any ``ok`` row keeps its newest row.
* **Order.** Keys in the order they first appear in the inputs (given order, then row order).
* **Scaling efficiency** is recomputed over the merged rows (``kbench.results.scaling``), since a
  shard may hold an n-device row whose 1-device row is in another shard.
* **Output** (``OUT``) is a sweep CSV of this version (each row's ``row_crc32`` computed
  afresh), checked by the same rules, written atomically (``kbench.common.outputs``), refused
  when it exists unless ``force``, and never one of the inputs.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from pathlib import Path
from typing import Sequence

from kbench.common import outputs
from kbench.results import scaling
from kbench.common.csvio import ROW_CHECK_COLUMN, to_csv_text
from kbench.errors import UsageError
from kbench.results.schema import DATA_COLUMNS, KEY_COLUMNS, SWEEP_COLUMNS, check_rows, read_rows, row_key


@dataclasses.dataclass
class Conflict:
    key: tuple[str, ...]
    kept: dict  # the winning row (with its source)
    dropped: list[dict]

    def describe(self) -> str:
        key = dict(zip(KEY_COLUMNS, self.key))
        what = " ".join(f"{c}={key[c]}" for c in KEY_COLUMNS if key[c] != "")

        def one(row):
            return f"{row['status']} at {row['timestamp']} in {row['_source']}"
        return (f"kbench: merge: {len(self.dropped) + 1} different rows for {what}: kept {one(self.kept)}; "
                f"dropped {'; '.join(one(r) for r in self.dropped)}")


@dataclasses.dataclass
class MergeResult:
    rows: list[dict]
    conflicts: list[Conflict]
    inputs: list[str]
    rows_read: int


def read_input(path: str, *, unique_keys: bool = True) -> list[dict]:
    """The rows of one input (a UsageError for anything but a valid sweep CSV, see the module
    docstring; ``unique_keys=False``: a repeated key is not an error, for a checker that counts
    them)."""
    target = Path(path)
    if not target.exists():
        raise UsageError(f"input {path!r} does not exist")
    if target.is_dir():
        raise UsageError(f"input {path!r} is a directory; give sweep CSV files")
    try:
        empty = target.stat().st_size == 0
    except OSError as exc:
        raise UsageError(f"cannot read input {path!r}: {exc.strerror or exc}") from None
    if empty:
        raise UsageError(f"input {path!r} is empty: not a kbench sweep CSV")
    return read_rows(path, unique_keys=unique_keys)


def _when(row: dict) -> _dt.datetime:
    try:
        moment = _dt.datetime.fromisoformat(row["timestamp"])
    except ValueError:
        return _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.timezone.utc)


def merge_rows(sources: Sequence[tuple[str, list[dict]]]) -> tuple[list[dict], list[Conflict]]:
    """``[(name, rows), ...]`` -> (one row per key, the conflicts). The winners are the input
    row dicts themselves, without their ``row_crc32`` (the writer computes it afresh;
    ``scaling_efficiency`` is recomputed): no copy per row, so that two 150k-row nights merge in
    well under their size in dicts."""
    by_key: dict[tuple, list[tuple[tuple[int, int], str, dict]]] = {}
    for source_index, (name, rows) in enumerate(sources):
        for row_index, row in enumerate(rows):
            by_key.setdefault(row_key(row), []).append(((source_index, row_index), name, row))
    merged, conflicts = [], []
    for key, candidates in by_key.items():
        if len(candidates) == 1:
            merged.append(candidates[0][2])
            continue
        distinct = []
        for candidate in candidates:
            row = candidate[2]
            if not any(all(row[c] == other[2][c] for c in DATA_COLUMNS) for other in distinct):
                distinct.append(candidate)
        pool = [item for item in distinct if item[2]["status"] == "ok"] or distinct
        winner = max(pool, key=lambda item: (_when(item[2]), item[0]))
        if len(distinct) > 1:
            conflicts.append(Conflict(key, {**winner[2], "_source": winner[1]},
                                      [{**row, "_source": name} for _, name, row in distinct if row is not winner[2]]))
        merged.append(winner[2])
    for row in merged:
        row.pop(ROW_CHECK_COLUMN, None)
    return merged, conflicts


def merge_files(out: str, inputs: Sequence[str], force: bool = False) -> MergeResult:
    """Check everything, merge, then write ``out`` atomically (see the module docstring)."""
    if not inputs:
        raise UsageError("merge needs at least one input CSV")
    target = Path(out).resolve()
    for path in inputs:
        if Path(path).resolve() == target:
            raise UsageError(f"OUT {out!r} is one of the inputs, which merge never modifies; choose another file")
    outputs.check_output(out, "OUT", overwrite=force)
    sources = [(path, read_input(path)) for path in inputs]
    rows, conflicts = merge_rows(sources)
    rows = check_rows(scaling.fill_efficiency(rows), out)  # a writer as strict as the readers
    outputs.write_text(out, to_csv_text(SWEEP_COLUMNS, rows), "OUT", overwrite=force)
    return MergeResult(rows, conflicts, list(inputs), sum(len(r) for _, r in sources))
