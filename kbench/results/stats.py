"""Statistics of repeated measurements: one row's rounds, a pair of rows, a series of nights.

Three questions, three tools (the choices are explained in the README, "Nightly statistics"):

* **One row** (``summarize_rounds``): a configuration is measured in R rounds (blocks of timed
  steps after one warm-up); the row's ``samples_per_s`` is the median of the R per-round
  throughputs, its spread ``samples_per_s_iqr`` their interquartile range (same unit), and the
  R values themselves are kept (``samples_per_s_rounds``, ';'-joined) so that a rank test can
  use the real samples later. Latency percentiles stay computed over all steps
  (``latency_stats``).
* **Two rows** (``compare_samples``): is NEW slower than BASE? Only when the medians moved by
  at least a minimum effect (the threshold, 10% by default as asv's factor 1.1) AND the move is
  significant given both rows' rounds: a two-sided Mann-Whitney U test (exact) at ``alpha``
  when the round counts can reach it (5 vs 5 can: the smallest two-sided p is 2/252 = 0.0079),
  else non-overlapping ranges of the rounds. Rows without rounds fall back to the threshold
  plus non-overlapping per-step ``cv`` intervals (``compare_without_rounds``).
* **A series** (``detect_steps``): change points over a whole history of nightly medians by
  recursive binary segmentation (L1, i.e. median, cost on the log throughput); a split is a
  step only with ``min_points`` nights each side, a median change of at least ``min_change``
  (5%, asv publish's) and of at least ``noise_factor`` (2.5, Chromium's) times the series'
  robust night-to-night noise.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from kbench.results.schema import format_rounds, parse_rounds  # noqa: F401 - the rounds' CSV text

DEFAULT_THRESHOLD = 0.10  # asv compare's factor 1.1; see the README, "Nightly statistics"
DEFAULT_ALPHA = 0.01

# Verdicts of a pair (kbench compare) and how they were reached. ``inconclusive``: the medians
# moved beyond the threshold but the rows cannot say whether by chance (too few rounds, none);
# it is counted and shown, never a regression.
FASTER, SLOWER, SAME, INCONCLUSIVE, NOT_COMPARABLE = "faster", "slower", "same", "inconclusive", "not_comparable"
VERDICTS = (SLOWER, FASTER, INCONCLUSIVE, SAME, NOT_COMPARABLE)
METHOD_RANK_TEST = "mann-whitney"
METHOD_TOO_FEW_ROUNDS = "too few rounds"
METHOD_NO_ROUNDS = "no rounds"


# ----------------------------------------------------------------------------- one row

def latency_stats(step_times_s: Sequence[float]) -> dict[str, float]:
    """Per-step latency statistics (ms) over all timed steps of all rounds, and ``cv``."""
    t = np.asarray(step_times_s, dtype=float)
    if t.size == 0 or not np.all(t > 0):
        raise ValueError("need at least one positive step time")
    ms = t * 1000.0
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if t.size > 1 else 0.0
    return {
        "latency_ms_p50": float(np.percentile(ms, 50)),
        "latency_ms_p90": float(np.percentile(ms, 90)),
        "latency_ms_p99": float(np.percentile(ms, 99)),
        "latency_ms_std": std,
        "latency_ms_mean": mean,
        "latency_ms_min": float(ms.min()),
        "cv": std / mean if mean > 0 else math.nan,
    }


def summarize_rounds(per_round_samples_per_s: Sequence[float],
                     per_step_times_s: Sequence[float] | None = None) -> dict:
    """The sweep row's throughput columns from R rounds.

    ``samples_per_s`` median over rounds (robust to one disturbed round), ``samples_per_s_iqr``
    the interquartile range of the rounds (samples/s; numpy's linear percentiles), ``rounds`` R,
    ``samples_per_s_rounds`` the R values in measurement order. With ``per_step_times_s`` (all
    timed steps of all rounds) the latency columns of ``latency_stats`` are added.
    """
    values = np.asarray(per_round_samples_per_s, dtype=float)
    if values.size == 0 or not np.all(np.isfinite(values)) or not np.all(values > 0):
        raise ValueError("need at least one positive per-round throughput")
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    summary = {
        "samples_per_s": float(median),
        "samples_per_s_iqr": float(q3 - q1),
        "rounds": int(values.size),
        "samples_per_s_rounds": format_rounds(values),
    }
    if per_step_times_s is not None:
        summary.update(latency_stats(per_step_times_s))
    return summary


def relative_iqr(values: Sequence[float]) -> float:
    """IQR / median of the rounds: the row's spread as a fraction (0.01 = 1%)."""
    return float(relative_iqr_many([values])[0])


def _by_length(samples: Sequence[Sequence[float]]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for index, values in enumerate(samples):
        groups.setdefault(len(values), []).append(index)
    return groups


def relative_iqr_many(samples: Sequence[Sequence[float]]) -> np.ndarray:
    """``relative_iqr`` of each entry (NaN for an empty one), computed for all entries of one
    length at once (numpy's percentiles along an axis)."""
    out = np.full(len(samples), math.nan)
    for length, indices in _by_length(samples).items():
        if not length:
            continue
        q1, median, q3 = np.percentile(np.asarray([samples[i] for i in indices], dtype=float), [25, 50, 75], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[indices] = np.where(median > 0, (q3 - q1) / median, math.nan)
    return out


def medians_many(samples: Sequence[Sequence[float]]) -> np.ndarray:
    """The median of each entry (NaN for an empty one), vectorised by length."""
    out = np.full(len(samples), math.nan)
    for length, indices in _by_length(samples).items():
        if length:
            out[indices] = np.median(np.asarray([samples[i] for i in indices], dtype=float), axis=1)
    return out


# ----------------------------------------------------------------------------- two rows

@dataclasses.dataclass
class PairResult:
    verdict: str          # faster | slower | same | inconclusive
    change: float         # new median / base median - 1 (throughput: negative = slower)
    method: str           # METHOD_RANK_TEST | METHOD_TOO_FEW_ROUNDS | METHOD_NO_ROUNDS
    p_value: float | None  # Mann-Whitney U, two-sided (None for the other methods)
    note: str = ""


def min_two_sided_p(n_base: int, n_new: int) -> float:
    """The smallest two-sided exact Mann-Whitney p-value that n_base vs n_new samples can give
    (complete separation): 2 / C(n_base + n_new, n_base)."""
    return min(1.0, 2.0 / math.comb(n_base + n_new, n_base))


def can_reach(n_base: int, n_new: int, alpha: float) -> bool:
    """Whether n_base vs n_new rounds can give a two-sided exact p <= alpha at all."""
    return n_base > 0 and n_new > 0 and min_two_sided_p(n_base, n_new) <= alpha


def min_rounds(alpha: float = DEFAULT_ALPHA) -> int:
    """The fewest rounds per side (both sides alike) with which ``compare`` can call a pair
    ``slower`` or ``faster`` at ``alpha``: 5 at 0.01 (2/252 = 0.0079), 4 at 0.05. With fewer, a
    move is ``inconclusive`` (``kbench sweep`` warns when ``--rounds`` is below this)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    rounds = 1
    while not can_reach(rounds, rounds, alpha):
        rounds += 1
    return rounds


def rounds_warning(rounds: int, alpha: float = DEFAULT_ALPHA) -> str | None:
    """The line ``kbench sweep`` prints when its rows cannot be judged by ``compare`` at
    ``alpha`` (None when they can)."""
    needed = min_rounds(alpha)
    if rounds >= needed:
        return None
    return (f"--rounds {rounds} is below the {needed} rounds that kbench compare needs to judge a change at "
            f"alpha {alpha:g}: every move of these rows will be 'inconclusive'")


EXACT_TEST_MAX_SAMPLES = 20


def mann_whitney_p(base: Sequence[float], new: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value: exact for up to ``EXACT_TEST_MAX_SAMPLES`` per side
    (the rounds of two rows), the normal approximation above. The exact null distribution is
    used even with ties: equal values within one side leave U unchanged (scipy's 'auto' would
    switch to the approximation for any tie and miss that 5 vs 5 rounds separate completely)."""
    return float(mann_whitney_p_many(np.asarray([base], dtype=float), np.asarray([new], dtype=float))[0])


def mann_whitney_p_many(base: np.ndarray, new: np.ndarray) -> np.ndarray:
    """``mann_whitney_p`` of each row of two 2-D arrays (pairs with equal round counts), in one
    vectorised scipy call: a 150k-configuration comparison takes a fraction of a second instead
    of minutes."""
    from scipy.stats import mannwhitneyu

    small = max(base.shape[1], new.shape[1]) <= EXACT_TEST_MAX_SAMPLES
    return np.asarray(mannwhitneyu(base, new, axis=1, alternative="two-sided",
                                   method="exact" if small else "asymptotic").pvalue, dtype=float)


def _verdict(change: float, p: float | None, testable: bool, threshold: float, alpha: float,
             counts: tuple[int, int]) -> PairResult:
    beyond = abs(change) >= threshold
    if not testable:
        if not beyond:
            return PairResult(SAME, change, METHOD_TOO_FEW_ROUNDS, None)
        return PairResult(INCONCLUSIVE, change, METHOD_TOO_FEW_ROUNDS, None,
                          f"moved {change:+.1%}, but {counts[0]} vs {counts[1]} rounds cannot reach alpha {alpha:g} "
                          f"(needs {min_rounds(alpha)} per side)")
    if beyond and p <= alpha:
        return PairResult(SLOWER if change < 0 else FASTER, change, METHOD_RANK_TEST, p)
    if beyond:
        note = f"moved {change:+.1%} but not significant (p={p:.3g} > {alpha:g})"
    elif p <= alpha:
        note = f"significant but within the {threshold:.0%} threshold"
    else:
        note = ""
    return PairResult(SAME, change, METHOD_RANK_TEST, p, note)


def compare_many(base_rounds: Sequence[Sequence[float]], new_rounds: Sequence[Sequence[float]],
                 thresholds: float | Sequence[float] = DEFAULT_THRESHOLD,
                 alpha: float = DEFAULT_ALPHA) -> list[PairResult]:
    """``compare_samples`` of many pairs at once (``thresholds``: one for all, or one per pair):
    the rank tests of the pairs with equal round counts run as one vectorised call."""
    if len(base_rounds) != len(new_rounds):
        raise ValueError("base and new need one entry per pair")
    n = len(base_rounds)
    limits = np.broadcast_to(np.asarray(thresholds, dtype=float), (n,))
    if any(len(b) == 0 for b in base_rounds) or any(len(v) == 0 for v in new_rounds):
        raise ValueError("both sides need at least one round")
    changes = medians_many(new_rounds) / medians_many(base_rounds) - 1.0
    p_values: list[float | None] = [None] * n
    by_counts: dict[tuple[int, int], list[int]] = {}
    for i, (b, v) in enumerate(zip(base_rounds, new_rounds)):
        if can_reach(len(b), len(v), alpha):
            by_counts.setdefault((len(b), len(v)), []).append(i)
    for indices in by_counts.values():
        ps = mann_whitney_p_many(np.asarray([base_rounds[i] for i in indices], dtype=float),
                                 np.asarray([new_rounds[i] for i in indices], dtype=float))
        for i, p in zip(indices, ps):
            p_values[i] = float(p)
    return [_verdict(float(changes[i]), p_values[i], p_values[i] is not None, float(limits[i]), alpha,
                     (len(base_rounds[i]), len(new_rounds[i]))) for i in range(n)]


def compare_samples(base_rounds: Sequence[float], new_rounds: Sequence[float],
                    threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA) -> PairResult:
    """Verdict on two rows' per-round throughputs (higher is better).

    ``faster``/``slower`` need |change of medians| >= ``threshold`` AND the exact Mann-Whitney
    p <= ``alpha``. Only a test that can reach ``alpha`` with the rounds it has may judge: with
    fewer rounds (``min_rounds``) a move beyond the threshold is ``inconclusive``, never a
    regression. Everything else is ``same``.
    """
    return compare_many([base_rounds], [new_rounds], threshold, alpha)[0]


def compare_without_rounds(base_samples_per_s: float, new_samples_per_s: float,
                           threshold: float = DEFAULT_THRESHOLD) -> PairResult:
    """Rows without rounds (CSVs written before rounds existed, or rounds on one side only).

    One number per row carries no spread, so no test can say how often such a move happens by
    chance: a move beyond the threshold is ``inconclusive``, never ``slower``; within it, ``same``.
    """
    if not (base_samples_per_s > 0 and new_samples_per_s > 0):
        raise ValueError("throughputs must be positive")
    change = new_samples_per_s / base_samples_per_s - 1.0
    if abs(change) >= threshold:
        return PairResult(INCONCLUSIVE, change, METHOD_NO_ROUNDS, None,
                          f"moved {change:+.1%}; without rounds no test can tell it from run-to-run noise")
    return PairResult(SAME, change, METHOD_NO_ROUNDS, None)


def min_effect_from_noise(night_noise: float | None, threshold: float = DEFAULT_THRESHOLD,
                          factor: float | None = None) -> float:
    """The smallest change of one configuration that counts, given its history: the threshold,
    or ``factor`` times the night-to-night noise of a difference of two nights when that is
    larger (``night_noise``: ``robust_noise`` of the series' log values, one night's sigma; a
    difference of two nights has sqrt(2) times it). asv sets its step threshold from a series'
    own noise the same way. None (too few nights to know): the threshold."""
    if night_noise is None or not math.isfinite(night_noise):
        return threshold
    factor = DEFAULT_NOISE_FACTOR if factor is None else factor
    return max(threshold, -math.expm1(-factor * math.sqrt(2.0) * night_noise))


# ----------------------------------------------------------------------------- confirming a slowdown

@dataclasses.dataclass
class Confirmation:
    confirmed: bool
    change: float           # the suspect against the base, corrected by the control (negative = slower)
    p_value: float | None   # one-sided: how likely a base this far above the re-measured visits is by chance
    note: str


def confirm_slowdown(base_suspect: Sequence[float], base_control: Sequence[float] | None,
                     suspect_now: Sequence[float], control_now: Sequence[float] | None,
                     min_effect: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA) -> Confirmation:
    """Is a ``slower`` verdict real? ``suspect_now[i]`` and ``control_now[i]``: the samples/s of
    visit i of a re-measurement in which each visit builds and measures the configuration
    afresh, suspect and control side by side (``kbench.running.confirm``); ``base_*``: the base
    run's rounds of the two configurations.

    Whole runs shift by tens of percent between builds and processes (tests/data/nightly/aa/),
    so the suspect is judged by its ratio to the control, which a machine-wide shift moves
    alike, and the base run counts as *one* build: its ratio (median suspect / median control)
    is compared with the spread of the visits' ratios, which are independent builds of the new
    code. Confirmed when the median visit ratio fell by at least ``min_effect`` against the base
    ratio AND the base ratio lies above the visits' one-sided (1 - ``alpha``) prediction bound
    (log ratios; Student's t with V - 1 degrees of freedom, the visits' standard deviation
    never taken below ``NOISE_FLOOR``): under no change, a base build that lucky happens at most
    ``alpha`` of the time. Without a control, the suspect's own samples/s are compared (nothing
    corrects a machine shift then, which the note says).
    """
    from scipy.stats import t as student_t

    now_s = np.asarray(suspect_now, dtype=float)
    if base_control is not None and control_now is not None:
        now_c = np.asarray(control_now, dtype=float)
        if now_c.size != now_s.size:
            raise ValueError("the re-measured suspect and control need one value per visit each")
        base = math.log(float(np.median(base_suspect)) / float(np.median(base_control)))
        visits = np.log(now_s / now_c)
        against = "relative to the control"
    else:
        base, visits, against = math.log(float(np.median(base_suspect))), np.log(now_s), "without a control"
    change = math.expm1(float(np.median(visits)) - base)
    if visits.size < 2:
        return Confirmation(False, change, None, f"{visits.size} visit cannot show the spread between builds")
    spread = max(float(np.std(visits, ddof=1)), NOISE_FLOOR)
    score = (base - float(np.mean(visits))) / (spread * math.sqrt(1.0 + 1.0 / visits.size))
    p = float(student_t.sf(score, visits.size - 1))
    text = f"re-measured {change:+.1%} {against} over {visits.size} visits (p={p:.2g})"
    if change <= -min_effect and p <= alpha:
        return Confirmation(True, change, p, text)
    why = f"p > {alpha:g}" if change <= -min_effect else f"within the {min_effect:.0%} minimum effect"
    return Confirmation(False, change, p, f"{text}: {why}")


# ----------------------------------------------------------------------------- a series

DEFAULT_MIN_POINTS = 3
MIN_NIGHTS_FOR_NOISE = 5  # earlier nights of a configuration before its own noise sets its minimum effect
DEFAULT_MIN_CHANGE = 0.05
DEFAULT_NOISE_FACTOR = 2.5
NOISE_FLOOR = 0.005  # 0.5%: a series flatter than this is treated as this noisy


@dataclasses.dataclass
class Step:
    index: int            # first point of the new level
    before: float         # median of the segment before (original units)
    after: float          # median of the segment after
    change: float         # after / before - 1
    noise: float          # the series' robust night-to-night noise (relative, ~ log units)
    noise_multiple: float  # |log(after / before)| / noise
    p_value: float        # Mann-Whitney U, two-sided, points of the two segments
    points_before: int
    points_after: int


def robust_noise(log_values: np.ndarray) -> float:
    """Night-to-night noise of a log series, robust to its steps: the MAD of the first
    differences, scaled to a normal sigma (1.4826) and divided by sqrt(2) (a difference of two
    independent points has twice the variance); never below ``NOISE_FLOOR``."""
    if log_values.size < 3:
        return NOISE_FLOOR
    diffs = np.diff(log_values)
    mad = float(np.median(np.abs(diffs - np.median(diffs))))
    return max(1.4826 * mad / math.sqrt(2.0), NOISE_FLOOR)


def _l1_cost(values: np.ndarray) -> float:
    return float(np.abs(values - np.median(values)).sum()) if values.size else 0.0


def _best_split(values: np.ndarray, min_points: int) -> int | None:
    """The split index (first point of the right part) minimising the two parts' L1 cost."""
    best, best_cost = None, math.inf
    for split in range(min_points, values.size - min_points + 1):
        cost = _l1_cost(values[:split]) + _l1_cost(values[split:])
        if cost < best_cost - 1e-15:
            best, best_cost = split, cost
    return best


def detect_steps(values: Sequence[float], min_points: int = DEFAULT_MIN_POINTS,
                 min_change: float = DEFAULT_MIN_CHANGE, noise_factor: float = DEFAULT_NOISE_FACTOR) -> list[Step]:
    """Steps in a series of positive values (e.g. one configuration's nightly samples/s).

    Recursive binary segmentation: the best L1 split of a segment (each part >= ``min_points``)
    is kept when its medians differ by >= ``min_change`` (relative) and by >= ``noise_factor``
    times the whole series' robust noise, and the points either side of it sit on their own
    level; then both parts are searched again. Each step carries
    the Mann-Whitney p-value of the points on either side (within the neighbouring steps).
    """
    raw = np.asarray(values, dtype=float)
    if raw.size and not (np.all(np.isfinite(raw)) and np.all(raw > 0)):
        raise ValueError("a series must hold positive numbers")
    if min_points < 1:
        raise ValueError("min_points must be >= 1")
    logs = np.log(raw)
    noise = robust_noise(logs)
    found: list[int] = []

    def search(lo: int, hi: int):
        if hi - lo < 2 * min_points:
            return
        split = _best_split(logs[lo:hi], min_points)
        if split is None:
            return
        cut = lo + split
        left, right = float(np.median(logs[lo:cut])), float(np.median(logs[cut:hi]))
        delta = right - left
        # The nights either side of the cut must sit on their own level. This fails only when
        # min_points forced the cut (e.g. two low nights after ten high ones: the best cut with
        # three points on the right would start one night early): wait for more nights.
        settled = (abs(logs[cut] - right) <= abs(logs[cut] - left)
                   and abs(logs[cut - 1] - left) <= abs(logs[cut - 1] - right))
        if settled and abs(math.expm1(delta)) >= min_change and abs(delta) >= noise_factor * noise:
            found.append(cut)
            search(lo, cut)
            search(cut, hi)

    search(0, raw.size)
    found.sort()
    steps = []
    bounds = [0, *found, raw.size]
    for i, cut in enumerate(found, start=1):
        left, right = raw[bounds[i - 1]:cut], raw[cut:bounds[i + 1]]
        before, after = float(np.median(left)), float(np.median(right))
        delta = math.log(after / before)
        steps.append(Step(index=cut, before=before, after=after, change=after / before - 1.0, noise=noise,
                          noise_multiple=abs(delta) / noise, p_value=mann_whitney_p(left, right),
                          points_before=left.size, points_after=right.size))
    return steps
