"""kbench.results.stats on synthetic numbers: rounds summary, pair verdicts, change points."""

import math

import numpy as np
import pytest

from kbench.results import stats


def test_summarize_rounds_median_iqr_and_text():
    summary = stats.summarize_rounds([100.0, 103.0, 99.0, 98.0, 101.0])
    assert summary["samples_per_s"] == 100.0
    assert summary["samples_per_s_iqr"] == pytest.approx(101.0 - 99.0)
    assert summary["rounds"] == 5
    assert summary["samples_per_s_rounds"] == "100;103;99;98;101"  # measurement order kept
    assert stats.parse_rounds(summary["samples_per_s_rounds"]) == [100.0, 103.0, 99.0, 98.0, 101.0]
    assert "latency_ms_p50" not in summary


def test_summarize_rounds_median_ignores_one_disturbed_round():
    assert stats.summarize_rounds([100.0, 101.0, 20.0, 99.0, 100.5])["samples_per_s"] == 100.0


def test_summarize_rounds_with_step_times_adds_latency_over_all_steps():
    steps = [0.010] * 9 + [0.020]
    summary = stats.summarize_rounds([50.0, 60.0], steps)
    assert summary["latency_ms_p50"] == pytest.approx(10.0)
    assert summary["latency_ms_min"] == pytest.approx(10.0)
    assert summary["latency_ms_mean"] == pytest.approx(11.0)
    assert summary["cv"] == pytest.approx(np.std(steps, ddof=1) / np.mean(steps))


@pytest.mark.parametrize("bad", [[], [1.0, 0.0], [1.0, -2.0], [math.nan]])
def test_summarize_rounds_rejects_non_positive(bad):
    with pytest.raises(ValueError):
        stats.summarize_rounds(bad)


def test_format_rounds_is_compact():
    assert stats.format_rounds([1234.56789, 0.5]) == "1234.57;0.5"


@pytest.mark.parametrize("text", ["1;x", "1;;2", "1;-3", "0"])
def test_parse_rounds_rejects_garbage(text):
    with pytest.raises(ValueError):
        stats.parse_rounds(text)


def test_five_rounds_can_reach_the_default_alpha():
    assert stats.min_two_sided_p(5, 5) == pytest.approx(2 / 252)
    assert stats.min_two_sided_p(5, 5) <= stats.DEFAULT_ALPHA
    assert stats.min_two_sided_p(4, 4) > stats.DEFAULT_ALPHA


BASE = [100.0, 101.0, 99.0, 98.0, 102.0]


def test_clear_slowdown_is_slower():
    result = stats.compare_samples(BASE, [v / 1.3 for v in BASE])
    assert result.verdict == stats.SLOWER
    assert result.method == stats.METHOD_RANK_TEST
    assert result.change == pytest.approx(1 / 1.3 - 1)
    assert result.p_value == pytest.approx(2 / 252)


def test_clear_speedup_is_faster():
    assert stats.compare_samples(BASE, [v * 1.2 for v in BASE]).verdict == stats.FASTER


def test_ties_within_a_side_keep_the_exact_test():
    assert stats.compare_samples(BASE, [70.0, 70.0, 71.0, 69.0, 70.0]).verdict == stats.SLOWER


def test_significant_but_small_change_is_same():
    tight = [100.0, 100.5, 99.5, 100.2, 99.8]
    shifted = stats.compare_samples(tight, [v * 0.97 for v in tight])  # -3%, rounds fully separated
    assert shifted.p_value <= stats.DEFAULT_ALPHA
    assert shifted.verdict == stats.SAME
    assert "within" in shifted.note


def test_large_but_noisy_change_is_same():
    # the medians differ by 20%, but the rounds interleave: not significant
    base = [100.0, 60.0, 140.0, 90.0, 110.0]
    new = [80.0, 130.0, 50.0, 75.0, 95.0]
    result = stats.compare_samples(base, new)
    assert abs(result.change) >= 0.05
    assert result.verdict == stats.SAME
    assert "not significant" in result.note


def test_identical_rounds_are_same():
    assert stats.compare_samples(BASE, BASE).verdict == stats.SAME


def test_min_rounds_is_what_the_exact_test_needs():
    assert stats.min_rounds(0.01) == 5 and stats.min_rounds(0.05) == 4 and stats.min_rounds(0.2) == 3
    for alpha in (0.001, 0.01, 0.05, 0.2):
        n = stats.min_rounds(alpha)
        assert stats.min_two_sided_p(n, n) <= alpha < stats.min_two_sided_p(n - 1, n - 1)
    assert stats.rounds_warning(5) is None
    warning = stats.rounds_warning(2)
    assert "--rounds 2" in warning and "5 rounds" in warning and "inconclusive" in warning


@pytest.mark.parametrize("base, new", [([100.0, 101.0], [70.0, 69.0]),  # 2 vs 2, 30% apart: cannot reach 0.01
                                       ([100.0, 101.0, 99.0], [80.0, 79.0, 81.0]),
                                       ([100.0, 101.0, 99.0, 98.0], [80.0, 79.0, 81.0, 78.0])])
def test_too_few_rounds_are_inconclusive_never_a_regression(base, new):
    """Every round separated, 20-30% apart: with fewer rounds than the test needs to reach alpha,
    the move is `inconclusive` (what the old "ranges do not overlap" rule called slower by chance
    about 1 time in 3 with 2 vs 2 rounds of an unchanged configuration)."""
    result = stats.compare_samples(base, new)
    assert (result.verdict, result.method, result.p_value) == (stats.INCONCLUSIVE, stats.METHOD_TOO_FEW_ROUNDS, None)
    assert "cannot reach alpha 0.01" in result.note and "needs 5 per side" in result.note
    assert stats.compare_samples(base, [v * 0.97 for v in base]).verdict == stats.SAME  # within the threshold
    assert stats.compare_samples(base, new, alpha=0.5).verdict == stats.SLOWER  # a test that can reach alpha


def test_the_chance_of_a_verdict_is_at_most_alpha_whatever_the_rounds():
    """Calibration, by simulation: unchanged configurations with i.i.d. rounds (no run-level
    shift), 2 to 7 rounds a side, threshold 0 (the test alone decides): `slower`/`faster` at most
    alpha of the time (the exact test is conservative), never by the round count alone."""
    rng = np.random.default_rng(2024)
    for n in range(2, 8):
        base, new = rng.lognormal(0, 0.2, (4000, n)), rng.lognormal(0, 0.2, (4000, n))
        verdicts = [r.verdict for r in stats.compare_many(list(base), list(new), 1e-9, 0.01)]
        moved = sum(v in (stats.SLOWER, stats.FASTER) for v in verdicts) / len(verdicts)
        assert moved <= 0.01 + 3 * math.sqrt(0.01 * 0.99 / len(verdicts)), (n, moved)


def test_compare_many_equals_one_by_one_and_scipy():
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(7)
    bases = [list(rng.integers(90, 110, size=n).astype(float)) for n in (5, 5, 6, 3, 5)]  # ties included
    news = [list(rng.integers(60, 112, size=n).astype(float)) for n in (5, 5, 4, 3, 7)]
    together = stats.compare_many(bases, news)
    for base, new, result in zip(bases, news, together):
        assert result == stats.compare_samples(base, new)
        if result.p_value is not None:
            assert result.p_value == pytest.approx(mannwhitneyu(base, new, method="exact").pvalue)
    per_pair = stats.compare_many(bases[:2], news[:2], [0.5, 1e-9])
    assert per_pair[0].verdict == stats.SAME  # its own threshold: 50%


def test_without_rounds_a_move_is_inconclusive():
    result = stats.compare_without_rounds(100.0, 70.0)
    assert (result.verdict, result.method) == (stats.INCONCLUSIVE, stats.METHOD_NO_ROUNDS)
    assert "no test" in result.note
    assert stats.compare_without_rounds(100.0, 130.0).verdict == stats.INCONCLUSIVE
    assert stats.compare_without_rounds(100.0, 97.0).verdict == stats.SAME
    with pytest.raises(ValueError):
        stats.compare_without_rounds(0.0, 1.0)


def test_the_history_noise_raises_the_minimum_effect():
    assert stats.min_effect_from_noise(None) == stats.DEFAULT_THRESHOLD
    assert stats.min_effect_from_noise(0.01) == stats.DEFAULT_THRESHOLD  # quiet: the threshold
    noisy = stats.min_effect_from_noise(0.08)  # 8% a night: 2.5 x sqrt(2) x 8% of log change
    assert noisy == pytest.approx(1 - math.exp(-2.5 * math.sqrt(2) * 0.08))
    assert noisy > 0.2


# ----------------------------------------------------------------------------- confirmation

BASE_S, BASE_C = [100.0, 101.0, 99.0, 100.5, 99.5], [50.0, 50.5, 49.5, 50.2, 49.8]


def test_a_machine_shift_is_not_confirmed():
    """The re-measurement 30% slower, suspect and control alike: the suspect's ratio to the
    control did not move, so the slowdown is not confirmed (alone, it would look real)."""
    now_s, now_c = [70.0, 71.0, 68.0, 70.5, 69.5], [35.0, 35.4, 34.6, 35.2, 34.3]
    result = stats.confirm_slowdown(BASE_S, BASE_C, now_s, now_c)
    assert not result.confirmed and abs(result.change) < 0.03 and "within the 10%" in result.note
    alone = stats.confirm_slowdown(BASE_S, None, now_s, None)
    assert alone.confirmed and "without a control" in alone.note


def test_a_real_slowdown_is_confirmed():
    now_c = [52.0, 51.0, 50.0, 49.0, 48.0]
    slowed = [c * 2 * f for c, f in zip(now_c, (0.60, 0.61, 0.59, 0.62, 0.60))]  # 40% slower than the control
    result = stats.confirm_slowdown(BASE_S, BASE_C, slowed, now_c)
    assert result.confirmed and result.change == pytest.approx(-0.4, abs=0.02) and result.p_value <= 0.01


def test_a_lucky_base_build_is_not_confirmed():
    """Visits that scatter by 15% from build to build: a base 20% above their median is within
    what one build of the same code can do (p > alpha), so it is not confirmed."""
    now_c = [50.0] * 5
    scattered = [c * 2 * f for c, f in zip(now_c, (0.80, 1.00, 0.70, 0.95, 0.82))]
    result = stats.confirm_slowdown(BASE_S, BASE_C, scattered, now_c)
    assert result.change < -0.1 and not result.confirmed and result.p_value > 0.01
    assert "p > 0.01" in result.note


def test_one_visit_cannot_confirm():
    result = stats.confirm_slowdown(BASE_S, BASE_C, [60.0], [50.0])
    assert not result.confirmed and result.p_value is None


def test_the_confirmation_false_alarm_rate_is_at_most_alpha():
    """Simulation under no change: each build (the base, and every visit) shifts the suspect's
    ratio to the control by a log-normal factor (sigma 10%): confirmed at most alpha of the time,
    whatever the minimum effect (0 here: the test alone decides)."""
    rng = np.random.default_rng(11)
    trials, confirmed = 4000, 0
    for _ in range(trials):
        base_build, visit_builds = rng.normal(0, 0.1), rng.normal(0, 0.1, 5)
        base_s = 100 * math.exp(base_build) * rng.lognormal(0, 0.02, 5)
        now_s = 100 * np.exp(visit_builds) * rng.lognormal(0, 0.02, 5)
        confirmed += stats.confirm_slowdown(base_s, [50.0] * 5, now_s, [50.0] * 5, min_effect=1e-9).confirmed
    assert confirmed / trials <= 0.01 + 3 * math.sqrt(0.01 * 0.99 / trials)


# ----------------------------------------------------------------------------- change points

def _noisy(level, n, sigma, seed):
    return list(level * np.exp(np.random.default_rng(seed).normal(0.0, sigma, n)))


def test_flat_series_has_no_step():
    assert stats.detect_steps([100.0] * 20) == []


@pytest.mark.parametrize("seed", range(10))
def test_noisy_flat_series_has_no_step(seed):
    assert stats.detect_steps(_noisy(100.0, 40, 0.04, seed)) == []


def test_one_step_is_found_where_it_starts():
    series = _noisy(100.0, 12, 0.01, 1) + _noisy(77.0, 10, 0.01, 2)
    (step,) = stats.detect_steps(series)
    assert step.index == 12
    assert step.change == pytest.approx(77.0 / 100.0 - 1, abs=0.02)
    assert (step.points_before, step.points_after) == (12, 10)
    assert step.noise_multiple > stats.DEFAULT_NOISE_FACTOR
    assert step.p_value < 1e-4


def test_two_steps_are_both_found():
    series = _noisy(100.0, 8, 0.01, 3) + _noisy(80.0, 8, 0.01, 4) + _noisy(120.0, 8, 0.01, 5)
    assert [s.index for s in stats.detect_steps(series)] == [8, 16]


def test_step_below_min_change_is_ignored():
    series = _noisy(100.0, 10, 0.002, 6) + _noisy(97.0, 10, 0.002, 7)  # 3% < 5%
    assert stats.detect_steps(series) == []
    assert len(stats.detect_steps(series, min_change=0.02)) == 1


def test_step_within_the_noise_is_ignored():
    series = _noisy(100.0, 10, 0.08, 8) + _noisy(92.0, 10, 0.08, 9)  # 8% step, 8% noise
    assert stats.detect_steps(series) == []


def test_too_few_points_after_a_step():
    series = [100.0] * 10 + [70.0, 70.0]
    assert stats.detect_steps(series) == []
    assert len(stats.detect_steps(series + [70.0])) == 1


def test_a_single_outlier_night_is_not_a_step():
    series = _noisy(100.0, 20, 0.01, 10)
    series[9] = 50.0
    assert stats.detect_steps(series) == []


def test_robust_noise_ignores_the_step_and_has_a_floor():
    series = np.log(np.array(_noisy(100.0, 20, 0.02, 11) + _noisy(50.0, 20, 0.02, 12)))
    assert stats.robust_noise(series) == pytest.approx(0.02, rel=0.5)
    assert stats.robust_noise(np.zeros(10)) == stats.NOISE_FLOOR


def test_detect_steps_rejects_non_positive_values():
    with pytest.raises(ValueError):
        stats.detect_steps([1.0, 0.0, 2.0])


def test_a_sweep_with_too_few_rounds_warns(tmp_path, capsys):
    """`kbench sweep --rounds 2`: its rows can never be `slower` in `kbench compare` (alpha
    0.01 needs 5 rounds a side), and the sweep says so; with 5 it says nothing."""
    from kbench.cli import main

    for rounds, warned in (("2", True), ("5", False)):
        argv = ["sweep", "lenet5", "--input-size", "32", "--batch-sizes", "1", "--modes", "infer", "--warmup", "0",
                "--iters", "1", "--rounds", rounds, "--no-progress", "--profile-cache", str(tmp_path / "pc"),
                "--out", str(tmp_path / f"r{rounds}.csv")]
        assert main(argv) == 0
        err = capsys.readouterr().err
        assert ("warning: --rounds 2 is below the 5 rounds" in err) == warned, err
