"""``kbench compare``: two sweep CSVs, one verdict per configuration.

Rows are joined on the configuration key (``kbench.results.schema.CONFIG_KEY``: model, input,
variant, batch size, mode, backend, precision, jit, devices, classes, device kind). Each pair gets a
verdict (``kbench.results.stats``): ``faster``, ``slower``, ``same`` (within noise),
``inconclusive`` (the medians moved beyond the minimum effect but the rows cannot say whether by
chance: too few rounds for the test to reach ``alpha``, or no rounds at all) or
``not_comparable`` (a status other than ok on a side, a row missing on one side, a different
environment: device kind, host, TensorFlow/Keras/backend/Python version, or very different
load). Rows that differ only in the device kind are paired and shown as such rather than as two
missing rows. Nothing is compared silently: every row of either file appears exactly once in the
result.

Result columns (``COLUMNS``): the key, both throughputs (median over rounds), ``change`` (new /
base - 1, negative = slower), ``min_effect`` (the smallest change that counts for this
configuration: the threshold, or more where its history is noisier), ``p_value`` (Mann-Whitney,
when it was used), the round counts, ``base_spread``/``new_spread`` (IQR/median of the rounds,
or the per-step cv of a row without rounds), ``verdict``, ``confirmation`` (filled by ``kbench
nightly``, which re-measures every ``slower`` pair: ``kbench.nightly.confirm``), ``method`` (how
the verdict was reached), ``note`` (why) and ``base_other_cpu``/``new_other_cpu`` (the share of
the CPUs other processes used meanwhile).

**Load.** Rounds see the noise within one run, not a shift of the whole run: another job that
takes a core for the whole of one row slows every round alike (tests/data/nightly/README.md,
``second_set``). Each row records ``other_cpu_frac``; a pair whose medians moved (``faster`` or
``slower``) while the two rows' other-process load differed by ``LOAD_DIFFERENCE`` or more, or
while either row's was ``HEAVY_LOAD`` or more, is ``not_comparable`` ("measured under
different/heavy load"), not a regression: measure again on a quiet machine. A pair within noise
stays ``same`` whatever the load.

The pairing and the tests are vectorised where it matters (one scipy call for all rank tests),
so two 150k-row files compare in seconds (``benchmarks/nightly_readers.py``).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Mapping, Sequence

from kbench.errors import UsageError
from kbench.results import schema, stats
from kbench.results.frame import printable, read_sweep
from kbench.results.schema import CONFIG_KEY, ENVIRONMENT_COLUMNS, KEY_COLUMNS

COLUMNS = schema.DISPLAY_KEY + (
    "base_samples_per_s", "new_samples_per_s", "change", "min_effect", "p_value", "base_rounds", "new_rounds",
    "base_spread", "new_spread", "verdict", "confirmation", "method", "note", "base_other_cpu", "new_other_cpu")
# A quarter of the machine: half a core on a 2-core CPU. Other processes' load moves a CPU
# benchmark's throughput roughly in proportion (two runnable processes per core halve it).
LOAD_DIFFERENCE = 0.25
# Half the machine: a row measured while other processes took this much got what they left,
# which changes from minute to minute (recorded A/A pairs at 60-80%: throughputs 2-5x apart).
HEAVY_LOAD = 0.5
# What a pair needs of each side's row (the frame's parsed columns and the environment).
_SIDE_COLUMNS = ("key", "status", "throughput", "round_values", "step_cv", "other_cpu") + ENVIRONMENT_COLUMNS + (
    "device_kind",)


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
        """The ``slower`` rows, worst first."""
        return sorted((row for row in self.rows if row["verdict"] == stats.SLOWER), key=lambda row: row["change"])

    def summary(self) -> str:
        counts = self.counts()
        text = (f"{len(self.rows)} configurations: {counts['slower']} slower, {counts['faster']} faster, "
                f"{counts['inconclusive']} inconclusive, {counts['same']} same, "
                f"{counts['not_comparable']} not comparable (threshold {self.threshold:.1%}, alpha {self.alpha:g})")
        if self.regressions:
            worst = self.regressions[0]
            text += f"; worst: {label(worst)} {worst['change']:+.1%}"
        return printable(text)


def label(row: Mapping) -> str:
    """``resnet18 64x64 b8 train tensorflow float32`` of a result row (terminal-safe)."""
    return printable(f"{row['model']} {row['input']} b{row['batch_size']} {row['mode']} {row['backend']} "
                     f"{row['precision']}")


def _spread(side: Mapping) -> float | None:
    """The row's relative spread: IQR/median of its rounds (``spread``, computed for the whole
    frame at once), else its per-step cv."""
    if len(side["round_values"]) >= 2:
        return side["spread"]
    return side["step_cv"] if math.isfinite(side["step_cv"]) else None


def _environment_difference(base: Mapping, new: Mapping, ignore: Sequence[str]) -> str:
    differences = [f"{column} {base[column] or '?'} vs {new[column] or '?'}"
                   for column in ("device_kind",) + ENVIRONMENT_COLUMNS
                   if column not in ignore and base[column] != new[column]]
    return "; ".join(differences)


def _start_pair(key: tuple, base: Mapping | None, new: Mapping | None, ignore_env: Sequence[str]) -> dict:
    """The result row of a pair with everything but the verdict of two comparable ok rows."""
    row = schema.display_fields(dict(zip(CONFIG_KEY, key)))
    row["key"] = key  # not a column: for the confirmation (kbench.nightly.confirm)
    if base is not None and new is not None and base["device_kind"] != new["device_kind"]:
        row["device_kind"] = f"{base['device_kind']} -> {new['device_kind']}"
    row.update(base_samples_per_s=None, new_samples_per_s=None, change=None, min_effect=None, p_value=None,
               base_rounds=0, new_rounds=0, base_spread=None, new_spread=None, verdict=None, confirmation="",
               method="", note="", base_other_cpu=None, new_other_cpu=None)
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


def _finish_pair(row: dict, result: stats.PairResult, one_side_only: bool) -> dict:
    row.update(change=result.change, p_value=result.p_value, verdict=result.verdict, method=result.method,
               note=("rounds on one side only: " if one_side_only else "") + result.note)
    problem = load_problem(row["base_other_cpu"], row["new_other_cpu"])
    if result.verdict in (stats.FASTER, stats.SLOWER) and problem:
        row.update(verdict=stats.NOT_COMPARABLE,
                   note=f"{result.verdict} by {result.change:+.1%} but {problem}; measure again on a quiet machine")
    return row


def load_problem(base_load: float | None, new_load: float | None) -> str:
    """Why two rows' loads (``other_cpu_frac``) make a move meaningless ('' when they do not):
    very different (``LOAD_DIFFERENCE``) or heavy on either side (``HEAVY_LOAD``)."""
    loads = [value for value in (base_load, new_load) if value is not None]
    if len(loads) == 2 and abs(loads[1] - loads[0]) >= LOAD_DIFFERENCE:
        return (f"measured under different load: other processes used {loads[0]:.0%} vs {loads[1]:.0%} of "
                f"the CPUs")
    if loads and max(loads) >= HEAVY_LOAD:
        shown = " vs ".join(f"{value:.0%}" if value is not None else "?" for value in (base_load, new_load))
        return f"measured under heavy load: other processes used {shown} of the CPUs"
    return ""


def _records(frame) -> dict[tuple, dict]:
    """key -> the columns a pair needs, as plain dicts made from the columns' arrays
    (``iterrows`` or ``to_dict`` would cost seconds on a 150k-row night)."""
    columns = list(_SIDE_COLUMNS) + ["spread"]
    arrays = [frame[c].to_numpy() for c in _SIDE_COLUMNS] + [stats.relative_iqr_many(list(frame["round_values"]))]
    return {values[0]: dict(zip(columns, values)) for values in zip(*arrays)}


def compare_frames(base, new, threshold: float = stats.DEFAULT_THRESHOLD, alpha: float = stats.DEFAULT_ALPHA,
                   ignore_env: Sequence[str] = (), min_effects: Mapping[tuple, float] | None = None) -> list[dict]:
    """One result row per configuration present in either frame, in BASE's order then NEW's.
    ``min_effects``: a larger minimum effect for some configurations (``CONFIG_KEY`` tuples),
    e.g. from their history's night-to-night noise (``stats.min_effect_from_noise``)."""
    base_by_key, new_by_key = _records(base), _records(new)
    # A configuration measured on another device kind on the other side is paired with it
    # (and reported as an environment difference), when that pairing is unambiguous.
    loose = len(KEY_COLUMNS)
    unmatched_new: dict[tuple, list[tuple]] = {}
    for key in new_by_key:
        if key not in base_by_key:
            unmatched_new.setdefault(key[:loose], []).append(key)
    partner = {}
    for key in base_by_key:
        if key not in new_by_key:
            candidates = unmatched_new.get(key[:loose], ())
            if len(candidates) == 1:
                partner.setdefault(key[:loose], []).append((key, candidates[0]))
    partner = {pairs[0][0]: pairs[0][1] for pairs in partner.values() if len(pairs) == 1}

    results, used_new, tested, untested = [], set(), [], []
    min_effects = min_effects or {}

    def add(key, base_row, new_row):
        row = _start_pair(key, base_row, new_row, ignore_env)
        results.append(row)
        if row["verdict"] is None:
            row["min_effect"] = max(threshold, min_effects.get(key, threshold))
            if base_row["round_values"] and new_row["round_values"]:
                tested.append((row, base_row["round_values"], new_row["round_values"]))
            else:
                untested.append((row, base_row, new_row))

    for key, base_row in base_by_key.items():
        new_key = key if key in new_by_key else partner.get(key)
        if new_key:
            used_new.add(new_key)
        add(key, base_row, new_by_key.get(new_key) if new_key else None)
    for key, new_row in new_by_key.items():
        if key not in used_new:
            add(key, None, new_row)
    if tested:
        verdicts = stats.compare_many([b for _, b, _ in tested], [n for _, _, n in tested],
                                      [row["min_effect"] for row, _, _ in tested], alpha)
        for (row, _, _), result in zip(tested, verdicts):
            _finish_pair(row, result, False)
    for row, base_row, new_row in untested:
        result = stats.compare_without_rounds(base_row["throughput"], new_row["throughput"], row["min_effect"])
        _finish_pair(row, result, bool(base_row["round_values"] or new_row["round_values"]))
    return results


def check_verdict_settings(threshold: float, alpha: float, ignore_env: Sequence[str] = ()) -> None:
    if not 0 < threshold < 1:
        raise UsageError(f"threshold {threshold!r} must be a fraction between 0 and 1 (e.g. 5% or 0.05)")
    if not 0 < alpha < 1:
        raise UsageError(f"alpha {alpha!r} must be between 0 and 1")
    unknown = [c for c in ignore_env if c not in ("device_kind",) + ENVIRONMENT_COLUMNS]
    if unknown:
        raise UsageError(f"--ignore-env {unknown[0]!r}: allowed: {', '.join(('device_kind',) + ENVIRONMENT_COLUMNS)}")


def compare_loaded(base, new, base_path: str | Path, new_path: str | Path, threshold: float = stats.DEFAULT_THRESHOLD,
                   alpha: float = stats.DEFAULT_ALPHA, ignore_env: Sequence[str] = (),
                   min_effects: Mapping[tuple, float] | None = None) -> Comparison:
    """``compare_files`` of two frames already read (``read_sweep``). UsageError when either has
    no row, or when the two have no configuration in common (not two runs of one sweep): the
    same rule whichever side is the odd one."""
    check_verdict_settings(threshold, alpha, ignore_env)
    for path, frame in ((base_path, base), (new_path, new)):
        if not len(frame):
            raise UsageError(f"{str(path)!r} has a header but no rows: nothing to compare")
    base_keys = {key[:len(KEY_COLUMNS)] for key in base["key"]}
    if not base_keys & {key[:len(KEY_COLUMNS)] for key in new["key"]}:
        raise UsageError(f"{str(base_path)!r} and {str(new_path)!r} have no configuration in common "
                         f"(key: {', '.join(CONFIG_KEY)}); not two runs of one sweep")
    rows = compare_frames(base, new, threshold, alpha, ignore_env, min_effects)
    return Comparison(str(base_path), str(new_path), threshold, alpha, rows)


def compare_files(base_path: str | Path, new_path: str | Path, threshold: float = stats.DEFAULT_THRESHOLD,
                  alpha: float = stats.DEFAULT_ALPHA, ignore_env: Sequence[str] = (),
                  min_effects: Mapping[tuple, float] | None = None) -> Comparison:
    """Read, validate and compare two sweep CSVs (``compare_loaded``)."""
    check_verdict_settings(threshold, alpha, ignore_env)
    return compare_loaded(read_sweep(base_path), read_sweep(new_path), base_path, new_path, threshold, alpha,
                          ignore_env, min_effects)
