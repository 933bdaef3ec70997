"""``kbench compare``: two sweep CSVs, one verdict per configuration.

Rows are joined on the configuration key (``kbench.results.schema.CONFIG_KEY``: model, input,
variant, batch size, mode, backend, precision, jit, devices, classes, device kind). Each pair gets a verdict
(``kbench.results.stats``): ``faster``, ``slower``, ``same`` (within noise) or ``not_comparable`` (a
status other than ok on a side, a row missing on one side, or a different environment: device
kind, host, TensorFlow/Keras/backend/Python version). Rows that differ only in the device kind
are paired and shown as such rather than as two missing rows. Nothing is compared silently:
every row of either file appears exactly once in the result.

Result columns (``COLUMNS``): the key, both throughputs (median over rounds), ``change`` (new /
base - 1, negative = slower), ``p_value`` (Mann-Whitney, when it was used), the round counts,
``base_spread``/``new_spread`` (IQR/median of the rounds, or the per-step cv of a row without
rounds), ``verdict``, ``method`` (how the verdict was reached), ``note`` (why) and
``base_other_cpu``/``new_other_cpu`` (the share of the CPUs other processes used meanwhile).

**Load.** Rounds see the noise within one run, not a shift of the whole run: another job that
takes a core for the whole of one row slows every round alike (tests/data/nightly/README.md,
``second_set``). Each row records ``other_cpu_frac``; a pair whose medians moved (``faster`` or
``slower``) while the two rows' other-process load differed by ``LOAD_DIFFERENCE`` or more is
``not_comparable`` ("measured under different load"), not a regression: measure again on a
quiet machine. A pair within noise stays ``same`` whatever the load.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Sequence

from kbench.results import stats
from kbench.errors import UsageError
from kbench.results import schema
from kbench.results.frame import read_sweep
from kbench.results.schema import CONFIG_KEY, ENVIRONMENT_COLUMNS, KEY_COLUMNS

COLUMNS = schema.DISPLAY_KEY + (
    "base_samples_per_s", "new_samples_per_s", "change", "p_value", "base_rounds", "new_rounds", "base_spread",
    "new_spread", "verdict", "method", "note", "base_other_cpu", "new_other_cpu")
# A quarter of the machine: half a core on a 2-core CPU. Other processes' load moves a CPU
# benchmark's throughput roughly in proportion (two runnable processes per core halve it).
LOAD_DIFFERENCE = 0.25


@dataclasses.dataclass
class Comparison:
    base: str
    new: str
    threshold: float
    alpha: float
    rows: list[dict]

    def counts(self) -> dict[str, int]:
        counts = {verdict: 0 for verdict in stats.VERDICTS}
        for row in self.rows:
            counts[row["verdict"]] += 1
        return counts

    @property
    def regressions(self) -> list[dict]:
        return [row for row in self.rows if row["verdict"] == stats.SLOWER]

    def summary(self) -> str:
        counts = self.counts()
        text = (f"{len(self.rows)} configurations: {counts['slower']} slower, {counts['faster']} faster, "
                f"{counts['same']} same, {counts['not_comparable']} not comparable "
                f"(threshold {self.threshold:.1%}, alpha {self.alpha:g})")
        if self.regressions:
            worst = min(self.regressions, key=lambda row: row["change"])
            text += f"; worst: {_label(worst)} {worst['change']:+.1%}"
        return text


def _label(row: dict) -> str:
    return f"{row['model']} {row['input']} b{row['batch_size']} {row['mode']} {row['backend']} {row['precision']}"


def _spread(row) -> float | None:
    """The row's relative spread: IQR/median of its rounds, else its per-step cv."""
    if len(row["round_values"]) >= 2:
        return stats.relative_iqr(row["round_values"])
    return row["step_cv"] if math.isfinite(row["step_cv"]) else None


def _environment_difference(base, new, ignore: Sequence[str]) -> str:
    differences = [f"{column} {base[column] or '?'} vs {new[column] or '?'}"
                   for column in ("device_kind",) + ENVIRONMENT_COLUMNS
                   if column not in ignore and base[column] != new[column]]
    return "; ".join(differences)


def _pair(base, new, threshold: float, alpha: float, ignore_env: Sequence[str]) -> dict:
    source = base if base is not None else new
    row = schema.display_fields(source)
    if base is not None and new is not None and base["device_kind"] != new["device_kind"]:
        row["device_kind"] = f"{base['device_kind']} -> {new['device_kind']}"
    row.update(base_samples_per_s=None, new_samples_per_s=None, change=None, p_value=None, base_rounds=0,
               new_rounds=0, base_spread=None, new_spread=None, method="", note="", base_other_cpu=None,
               new_other_cpu=None)
    for side, side_row in (("base", base), ("new", new)):
        if side_row is not None and side_row["status"] == "ok":
            row[f"{side}_samples_per_s"] = side_row["throughput"]
            row[f"{side}_rounds"] = len(side_row["round_values"])
            row[f"{side}_spread"] = _spread(side_row)
            if math.isfinite(side_row["other_cpu"]):
                row[f"{side}_other_cpu"] = side_row["other_cpu"]
    if base is None or new is None:
        row.update(verdict=stats.NOT_COMPARABLE, note=f"only in {'new' if base is None else 'base'}")
        return row
    if base["status"] != "ok" or new["status"] != "ok":
        row.update(verdict=stats.NOT_COMPARABLE, note=f"status {base['status']} -> {new['status']}")
        return row
    row["change"] = new["throughput"] / base["throughput"] - 1.0
    difference = _environment_difference(base, new, ignore_env)
    if difference:
        row.update(verdict=stats.NOT_COMPARABLE, note=f"environment differs: {difference}")
        return row
    if base["round_values"] and new["round_values"]:
        result = stats.compare_samples(base["round_values"], new["round_values"], threshold, alpha)
    else:
        result = stats.compare_without_rounds(base["throughput"], new["throughput"], base["step_cv"],
                                              new["step_cv"], threshold)
        if base["round_values"] or new["round_values"]:
            result.note = "rounds on one side only: " + result.note
    row.update(change=result.change, p_value=result.p_value, verdict=result.verdict, method=result.method,
               note=result.note)
    loads = (row["base_other_cpu"], row["new_other_cpu"])
    if result.verdict in (stats.FASTER, stats.SLOWER) and None not in loads \
            and abs(loads[1] - loads[0]) >= LOAD_DIFFERENCE:
        row.update(verdict=stats.NOT_COMPARABLE,
                   note=f"{result.verdict} by {result.change:+.1%} but measured under different load: other "
                        f"processes used {loads[0]:.0%} vs {loads[1]:.0%} of the CPUs; "
                        f"measure again on a quiet machine")
    return row


def compare_frames(base, new, threshold: float = stats.DEFAULT_THRESHOLD, alpha: float = stats.DEFAULT_ALPHA,
                   ignore_env: Sequence[str] = ()) -> list[dict]:
    """One result row per configuration present in either frame, in BASE's order then NEW's."""
    base_by_key = {row["key"]: row for _, row in base.iterrows()}
    new_by_key = {row["key"]: row for _, row in new.iterrows()}
    # A configuration measured on another device kind on the other side is paired with it
    # (and reported as an environment difference), when that pairing is unambiguous.
    loose = len(KEY_COLUMNS)
    unmatched_new: dict[tuple, list[tuple]] = {}
    for key in new_by_key:
        if key not in base_by_key:
            unmatched_new.setdefault(key[:loose], []).append(key)
    unmatched_base: dict[tuple, list[tuple]] = {}
    for key in base_by_key:
        if key not in new_by_key:
            unmatched_base.setdefault(key[:loose], []).append(key)
    partner = {}
    for short, keys in unmatched_base.items():
        if len(keys) == 1 and len(unmatched_new.get(short, ())) == 1:
            partner[keys[0]] = unmatched_new[short][0]
    results, used_new = [], set()
    for key, base_row in base_by_key.items():
        new_key = key if key in new_by_key else partner.get(key)
        new_row = new_by_key.get(new_key) if new_key else None
        if new_key:
            used_new.add(new_key)
        results.append(_pair(base_row, new_row, threshold, alpha, ignore_env))
    for key, new_row in new_by_key.items():
        if key not in used_new:
            results.append(_pair(None, new_row, threshold, alpha, ignore_env))
    return results


def compare_files(base_path: str | Path, new_path: str | Path, threshold: float = stats.DEFAULT_THRESHOLD,
                  alpha: float = stats.DEFAULT_ALPHA, ignore_env: Sequence[str] = ()) -> Comparison:
    """Read, validate and compare two sweep CSVs. UsageError when a file is not a sweep CSV, or
    when the two files have no configuration in common (not two runs of one sweep)."""
    if not 0 < threshold < 1:
        raise UsageError(f"threshold {threshold!r} must be a fraction between 0 and 1 (e.g. 5% or 0.05)")
    if not 0 < alpha < 1:
        raise UsageError(f"alpha {alpha!r} must be between 0 and 1")
    unknown = [c for c in ignore_env if c not in ("device_kind",) + ENVIRONMENT_COLUMNS]
    if unknown:
        raise UsageError(f"--ignore-env {unknown[0]!r}: allowed: {', '.join(('device_kind',) + ENVIRONMENT_COLUMNS)}")
    base, new = read_sweep(base_path), read_sweep(new_path)
    base_keys = {key[:len(KEY_COLUMNS)] for key in base["key"]}
    if base_keys and not base_keys & {key[:len(KEY_COLUMNS)] for key in new["key"]}:
        raise UsageError(f"{str(base_path)!r} and {str(new_path)!r} have no configuration in common "
                         f"(key: {', '.join(CONFIG_KEY)}); not two runs of one sweep")
    rows = compare_frames(base, new, threshold, alpha, ignore_env)
    return Comparison(str(base_path), str(new_path), threshold, alpha, rows)
