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
MIN_ROUNDS_FOR_TEST = 3

# Verdicts of a pair (kbench compare) and how they were reached.
FASTER, SLOWER, SAME, NOT_COMPARABLE = "faster", "slower", "same", "not_comparable"
VERDICTS = (FASTER, SLOWER, SAME, NOT_COMPARABLE)
METHOD_RANK_TEST = "mann-whitney"
METHOD_RANGES = "ranges"
METHOD_CV_FALLBACK = "threshold+cv (no rounds)"


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
    v = np.asarray(values, dtype=float)
    q1, median, q3 = np.percentile(v, [25, 50, 75])
    return float((q3 - q1) / median) if median > 0 else math.nan


# ----------------------------------------------------------------------------- two rows

@dataclasses.dataclass
class PairResult:
    verdict: str          # faster | slower | same
    change: float         # new median / base median - 1 (throughput: negative = slower)
    method: str           # METHOD_RANK_TEST | METHOD_RANGES | METHOD_CV_FALLBACK
    p_value: float | None  # Mann-Whitney U, two-sided (None for the other methods)
    note: str = ""


def min_two_sided_p(n_base: int, n_new: int) -> float:
    """The smallest two-sided exact Mann-Whitney p-value that n_base vs n_new samples can give
    (complete separation): 2 / C(n_base + n_new, n_base)."""
    return min(1.0, 2.0 / math.comb(n_base + n_new, n_base))


EXACT_TEST_MAX_SAMPLES = 20


def mann_whitney_p(base: Sequence[float], new: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value: exact for up to ``EXACT_TEST_MAX_SAMPLES`` per side
    (the rounds of two rows), the normal approximation above. The exact null distribution is
    used even with ties: equal values within one side leave U unchanged (scipy's 'auto' would
    switch to the approximation for any tie and miss that 5 vs 5 rounds separate completely)."""
    from scipy.stats import mannwhitneyu

    small = max(len(base), len(new)) <= EXACT_TEST_MAX_SAMPLES
    return float(mannwhitneyu(base, new, alternative="two-sided", method="exact" if small else "asymptotic").pvalue)


def compare_samples(base_rounds: Sequence[float], new_rounds: Sequence[float],
                    threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA) -> PairResult:
    """Verdict on two rows' per-round throughputs (higher is better).

    ``faster``/``slower`` need |change of medians| >= ``threshold`` AND significance: the
    Mann-Whitney p <= ``alpha`` when the round counts can reach ``alpha``, else (too few
    rounds for the test) rounds whose ranges do not overlap. Everything else is ``same``.
    """
    base, new = np.asarray(base_rounds, dtype=float), np.asarray(new_rounds, dtype=float)
    if base.size == 0 or new.size == 0:
        raise ValueError("both sides need at least one round")
    change = float(np.median(new) / np.median(base) - 1.0)
    beyond = abs(change) >= threshold
    if min(base.size, new.size) >= MIN_ROUNDS_FOR_TEST and min_two_sided_p(base.size, new.size) <= alpha:
        p = mann_whitney_p(base, new)
        significant, method = p <= alpha, METHOD_RANK_TEST
        why = f"p={p:.3g} > {alpha:g}"
    else:
        p = None
        significant = bool(new.max() < base.min() or new.min() > base.max())
        method = METHOD_RANGES
        why = "the rounds' ranges overlap"
    if beyond and significant:
        return PairResult(SLOWER if change < 0 else FASTER, change, method, p)
    if beyond:
        note = f"moved {change:+.1%} but not significant ({why})"
    elif significant:
        note = f"significant but within the {threshold:.0%} threshold"
    else:
        note = ""
    return PairResult(SAME, change, method, p, note)


def compare_without_rounds(base_samples_per_s: float, new_samples_per_s: float, base_cv: float | None,
                           new_cv: float | None, threshold: float = DEFAULT_THRESHOLD) -> PairResult:
    """The fallback for rows without rounds (CSVs written before rounds existed).

    One number per row and no run-to-run spread, so no test: each row's throughput is taken as
    uncertain by its per-step coefficient of variation (a run whose steps vary by 15% can be
    that far off as a whole), and a change counts only when it exceeds the threshold AND these
    two intervals do not overlap (|change| >= cv_base + cv_new), the no-rounds analogue of
    asv's non-overlapping intervals. Run-level shifts (another job loading the second core)
    move every step alike and leave the cv small: only rounds can tell those from a regression.
    """
    if not (base_samples_per_s > 0 and new_samples_per_s > 0):
        raise ValueError("throughputs must be positive")
    change = new_samples_per_s / base_samples_per_s - 1.0
    noise = sum(c for c in (base_cv, new_cv) if c is not None and math.isfinite(c))
    note = "no rounds: threshold and per-step cv only"
    if abs(change) >= max(threshold, noise):
        return PairResult(SLOWER if change < 0 else FASTER, change, METHOD_CV_FALLBACK, None, note)
    if abs(change) >= threshold:
        note = f"moved {change:+.1%}, within the two rows' per-step cv {noise:.1%} (no rounds)"
    return PairResult(SAME, change, METHOD_CV_FALLBACK, None, note)


# ----------------------------------------------------------------------------- a series

DEFAULT_MIN_POINTS = 3
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
