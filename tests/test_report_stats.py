"""sgpo.report.stats on hand-computed values: FLOPs to a target, bootstrap ratios, AUC, equal compute."""

import json
import math

import numpy as np
import pytest

from sgpo.report.stats import (
    aa_check,
    acc_at,
    auc_log_flops,
    baseline_gain,
    bootstrap_diff,
    bootstrap_median,
    bootstrap_ratio,
    curves_mean_flops,
    flops_to_reach,
    json_safe,
    target_for,
)

INF = float("inf")


# --- FLOPs to a target ---------------------------------------------------------------------------

def test_crossing_is_log_linear_between_the_bracketing_points():
    flops, acc = [1e12, 1e13, 1e14], [0.2, 0.4, 0.6]
    # 0.5 is halfway from 0.4 to 0.6: halfway from 13 to 14 in log10 FLOPs (linear would give 5.5e13)
    assert flops_to_reach(flops, acc, 0.5) == pytest.approx(10**13.5)
    assert flops_to_reach(flops, acc, 0.3) == pytest.approx(10**12.5)
    assert flops_to_reach(flops, acc, 0.45) == pytest.approx(10**13.25)
    assert flops_to_reach(flops, acc, 0.4) == pytest.approx(1e13)


def test_first_crossing_counts_even_if_the_curve_drops_and_crosses_again():
    assert flops_to_reach([1e12, 1e13, 1e14, 1e15], [0.2, 0.6, 0.3, 0.8], 0.4) == pytest.approx(10**12.5)


def test_first_point_already_at_target_gives_its_flops():
    assert flops_to_reach([3e11, 1e13], [0.6, 0.7], 0.5) == 3e11
    assert flops_to_reach([0.0, 1e13], [0.6, 0.7], 0.6) == 0.0


def test_never_reaching_is_inf():
    assert flops_to_reach([1e12, 1e13, 1e14], [0.2, 0.4, 0.45], 0.5) == INF


def test_segment_from_zero_flops_is_linear_in_flops():
    flops, acc = [0.0, 1e12, 1e13], [0.2, 0.4, 0.6]
    assert flops_to_reach(flops, acc, 0.3) == pytest.approx(5e11)
    assert flops_to_reach(flops, acc, 0.5) == pytest.approx(10**12.5)  # later segments stay log-linear


def test_a_target_equal_up_to_rounding_counts_as_reached():
    target = target_for(0.1, 0.2, 1.0)  # 0.30000000000000004
    assert target > 0.3 and flops_to_reach([1e12, 1e13], [0.1, 0.3], target) == pytest.approx(1e13)


def test_bad_curves_are_refused():
    with pytest.raises(ValueError, match="strictly increasing"):
        flops_to_reach([1e12, 1e12], [0.1, 0.2], 0.15)
    with pytest.raises(ValueError, match="equal"):
        flops_to_reach([1e12, 2e12], [0.1], 0.15)


def test_baseline_gain_is_the_median_of_per_seed_values_and_target_adds_a_fraction():
    curves = [([0, 1e12], [0.1, 0.5]), ([0, 1e12], [0.2, 0.4]), ([0, 1e12], [0.3, 1.0])]
    before, final, gain = baseline_gain(curves)
    # gains 0.4, 0.2, 0.7: their median 0.4 is not final - before = 0.3
    assert (before, final, gain) == pytest.approx((0.2, 0.5, 0.4))
    assert target_for(before, gain, 0.75) == pytest.approx(0.5)


# --- bootstrap ratio ------------------------------------------------------------------------------

def test_bootstrap_ratio_point_is_ratio_of_medians_and_interval_is_pinned():
    base, method = [1e12, 2e12, 4e12], [1e12, 1e12, 2e12]
    r = bootstrap_ratio(base, method)
    assert r["median"] == pytest.approx(2.0) and r["never"] == 0 and r["lower_bound"] is None
    lo, hi = r["ci"]
    # any resample's ratio lies in [min base / max method, max base / min method] = [0.5, 4]
    assert 0.5 <= lo <= r["median"] <= hi <= 4.0
    assert r["ci"] == pytest.approx([0.5, 4.0]) and bootstrap_ratio(base, method) == r

    base5, method5 = [1e12, 2e12, 3e12, 4e12, 6e12], [1e12, 1.5e12, 2e12, 2.5e12, 3e12]
    r5 = bootstrap_ratio(base5, method5, ci=0.8)
    assert r5["median"] == pytest.approx(1.5) and r5["ci"] == pytest.approx([0.8, 8 / 3])
    # skewed seeds: the plain ratio 1e12 / 3e12 differs from the median of the resampled ratios (0.5)
    skew = bootstrap_ratio([1e12, 1e12, 1e12, 1e13, 1e13], [1e12, 2e12, 3e12, 4e12, 5e12])
    assert skew["median"] == pytest.approx(1 / 3) and skew["ci"] == pytest.approx([0.2, 5.0])


def test_bootstrap_resamples_each_group_independently():
    # with the same values in both groups, a joint resample would give ratio 1 every time
    r = bootstrap_ratio([1e12, 2e12, 3e12, 4e12, 5e12], [1e12, 2e12, 3e12, 4e12, 5e12], n_boot=2000)
    assert r["median"] == 1.0 and r["ci"][0] < 0.8 and r["ci"][1] > 1.25


def test_method_never_reaching_gives_ratio_zero():
    r = bootstrap_ratio([1e12, 2e12, 3e12], [INF, INF, 5e12])
    assert r["median"] == 0.0 and r["never"] == 2 and r["lower_bound"] is None
    assert bootstrap_ratio([INF, INF, INF], [INF, INF, INF])["median"] == 0.0


def test_baseline_never_reaching_gives_inf_and_a_lower_bound_from_its_budgets():
    base, method = [1e12, INF, INF], [1e12, 2e12, 2e12]
    r = bootstrap_ratio(base, method, base_budgets=[9e12, 6e12, 8e12])
    # the two seeds that never got there needed more than 6e12 and 8e12: median of [1e12, >6e12, >8e12]
    # is >= 6e12, so the ratio is >= 6e12 / 2e12 (not the median budget 8e12 / 2e12)
    assert r["median"] == INF and r["lower_bound"] == pytest.approx(3.0) and r["never"] == 0
    assert bootstrap_ratio(base, method)["lower_bound"] is None  # no budgets, no bound


def test_half_inf_in_an_even_count_makes_the_median_inf():
    assert bootstrap_ratio([1e12, 3e12, INF, INF], [1e12, 1e12])["median"] == INF
    assert bootstrap_ratio([1e12, 3e12, 5e12, INF], [1e12, 1e12])["median"] == pytest.approx(4.0)


def test_interval_over_resamples_with_inf_is_inf_not_nan():
    r = bootstrap_ratio([1e12, 2e12, INF], [1e12, 2e12, 3e12])
    assert r["median"] == pytest.approx(1.0)
    assert r["ci"][0] == pytest.approx(1 / 3) and r["ci"][1] == INF  # np.percentile would give nan here


def test_aa_intervals_cover_one_in_most_synthetic_repetitions():
    """Ten seeds' FLOPs-to-target from one log-normal split 5/5: the 95% interval should contain 1."""
    rng = np.random.default_rng(1)
    covered = 0
    for rep in range(100):
        x = np.exp(rng.normal(math.log(1e13), 0.2, 10))
        lo, hi = bootstrap_ratio(x[:5], x[5:], n_boot=2000, seed=rep)["ci"]
        covered += lo <= 1 <= hi
    assert covered >= 90


def test_curves_mean_flops_averages_the_runs_on_the_grid_before_the_crossing():
    curves = [([1e10, 1e11, 1e12], [0.2, 0.4, 0.6]), ([1e10, 1e11, 1e12], [0.2, 0.2, 0.4])]
    grid = [1e9, 1e10, 1e11, 1e12]  # 1e9: before either run's first evaluation, its first value holds
    # mean curve 0.2, 0.2, 0.3, 0.5: 0.4 is halfway from 0.3 to 0.5, so halfway from 11 to 12 in log10
    assert curves_mean_flops(curves, grid, 0.4) == pytest.approx(10 ** 11.5)
    assert curves_mean_flops(curves, grid, 0.2) == 1e9
    assert curves_mean_flops(curves, grid, 0.55) == INF  # the mean never gets there (one run alone does)


# --- accuracy bootstrap ---------------------------------------------------------------------------

def test_bootstrap_median_and_diff_are_pinned():
    r = bootstrap_median([0.40, 0.45, 0.48, 0.50, 0.52, 0.55, 0.58, 0.60, 0.70])
    assert r["median"] == pytest.approx(0.52) and r["ci"] == pytest.approx([0.45, 0.60])
    d = bootstrap_diff([0.40, 0.45, 0.50, 0.55, 0.60], [0.50, 0.52, 0.56, 0.60, 0.70])
    assert d["median"] == pytest.approx(0.06) and d["ci"] == pytest.approx([-0.05, 0.20])


# --- AUC and accuracy at equal compute ------------------------------------------------------------

def test_auc_of_a_flat_curve_is_its_value():
    assert auc_log_flops([1e10, 1e11, 1e12], [0.5, 0.5, 0.5], 1e10, 1e12) == pytest.approx(0.5)


def test_auc_of_a_curve_linear_in_log_flops_is_the_mean_of_its_ends():
    assert auc_log_flops([1e10, 1e12], [0.2, 0.6], 1e10, 1e12) == pytest.approx(0.4)
    assert auc_log_flops([1e10, 1e11, 1e12], [0.2, 0.4, 0.6], 10**10.5, 10**11.5) == pytest.approx(0.4)


def test_auc_holds_the_last_value_flat_and_leaves_out_a_zero_flops_point():
    # 10..11: mean 0.3; 11..12: flat at 0.4 -> 0.35
    assert auc_log_flops([1e10, 1e11], [0.2, 0.4], 1e10, 1e12) == pytest.approx(0.35)
    assert auc_log_flops([0.0, 1e10, 1e12], [0.0, 0.2, 0.6], 1e10, 1e12) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="first positive point"):
        auc_log_flops([1e10, 1e12], [0.2, 0.6], 1e9, 1e12)
    with pytest.raises(ValueError, match="first positive point"):
        auc_log_flops([0.0, 1e10, 1e12], [0.0, 0.2, 0.6], 1e9, 1e12)


def test_acc_at_interpolates_log_linearly_with_a_short_flat_tail():
    flops, acc = [1e12, 1e14], [0.2, 0.6]
    assert acc_at(flops, acc, 1e13) == pytest.approx(0.4)  # linear in FLOPs would give ~0.236
    assert acc_at(flops, acc, 1e12) == 0.2 and acc_at(flops, acc, 1e14) == 0.6
    assert acc_at(flops, acc, 1.005e14) == 0.6  # within 1% past the end
    assert math.isnan(acc_at(flops, acc, 1.02e14)) and math.isnan(acc_at(flops, acc, 5e11))
    assert acc_at([0.0, 1e12], [0.2, 0.4], 5e11) == pytest.approx(0.3)


# --- A/A check and JSON ---------------------------------------------------------------------------

@pytest.mark.parametrize("ci, ok", [([0.9, 1.1], True), ([0.8, 1.25], True), ([1.05, 1.2], False),
                                    ([0.85, 0.95], False), ([0.7, 1.1], False), ([0.9, 1.3], False)])
def test_aa_check_needs_one_inside_and_a_narrow_interval(ci, ok):
    passed, message = aa_check({"median": 1.0, "ci": ci})
    assert passed is ok and (message.endswith("ok") is ok)


def test_json_safe_writes_inf_and_nan_as_null():
    r = bootstrap_ratio([1e12, INF, INF], [1e12, 2e12, 2e12], base_budgets=[5e12, 6e12, 8e12])
    out = json.loads(json.dumps(json_safe({"f90": r, "t": (np.float64(INF), 1.5, float("nan")), "n": 3}),
                                allow_nan=False))
    assert out["f90"]["median"] is None and out["f90"]["ci"][1] is None and out["f90"]["lower_bound"] == 3.0
    assert out["t"] == [None, 1.5, None] and out["n"] == 3


def test_curves_on_a_grid_hold_the_first_value_before_the_first_evaluation():
    from sgpo.report import stats

    grid = [5e10, 1e11, 10**11.5, 1e12, 2e12]
    v = stats.curves_on_grid([([1e11, 1e12], [0.4, 0.6])], grid)[0]
    assert v[:4] == pytest.approx([0.4, 0.4, 0.5, 0.6]) and np.isnan(v[4])  # past the end (1% hold): nan


def test_mean_curve_crossing_by_hand():
    from sgpo.report import stats

    # two runs from 0 FLOPs (linear there): 0.4 -> 0.6 and 0.4 -> 0.8 at 1e12; their mean 0.4 -> 0.7
    # reaches 0.5 a third of the way: 1e12 / 3
    curves = [([0.0, 1e12], [0.4, 0.6]), ([0.0, 1e12], [0.4, 0.8])]
    values = stats.curves_on_grid(curves, [0.0, 1e12])
    assert stats.mean_curve_flops(values, [0.0, 1e12], 0.5) == pytest.approx(1e12 / 3)
    assert stats.mean_curve_flops(values, [0.0, 1e12], 0.75) == float("inf")
    # groups of identical runs, the method's twice as fast: ratio 2 in every resample
    base = [([0.0, 1e12, 2e12], [0.4, 0.7, 0.7])] * 2
    fast = [([0.0, 5e11, 2e12], [0.4, 0.7, 0.7])] * 2
    grid = np.concatenate([[0.0], np.logspace(10, np.log10(2e12), 201)])
    r = stats.bootstrap_mean_curve_ratio(base, fast, 0.5, grid, n_boot=50)
    assert r["median"] == pytest.approx(2.0, rel=1e-3) and r["ci"] == pytest.approx([2.0, 2.0], rel=1e-3)
    assert r["never"] == 0 and r["lower_bound"] is None
    # resampling the mixed group moves its mean curve: the interval opens
    assert stats.bootstrap_mean_curve_ratio(curves, curves, 0.5, [0.0, 1e12], n_boot=200)["ci"][0] < 1
    # a baseline that never gets there on the grid (ends at 2e12): the ratio is at least 2e12 over the
    # method's 5e11 / 3 (0.4 -> 0.7 linear from 0 FLOPs);
    # the other way round the method never does: ratio 0, never 1
    slow = [([0.0, 1e12, 2e12], [0.4, 0.45, 0.45])] * 2
    r = stats.bootstrap_mean_curve_ratio(slow, fast, 0.5, grid, n_boot=20)
    assert r["median"] == float("inf") and r["lower_bound"] == pytest.approx(12.0, rel=1e-3) and r["never"] == 0
    r = stats.bootstrap_mean_curve_ratio(fast, slow, 0.5, grid, n_boot=20)
    assert r["median"] == 0.0 and r["never"] == 1 and r["lower_bound"] is None


def test_resampled_mean_curve_crossings_equal_the_one_at_a_time_ones():
    """The vectorised crossings (bootstrap_mean_curve_ratio's) against mean_curve_flops per resample,
    on rough random curves: reached at the first point, in between (from 0 FLOPs and in log), never,
    and with a run whose curve ends inside the grid (nan there)."""
    from sgpo.report import stats

    rng = np.random.default_rng(1)
    grid = np.concatenate([[0.0], np.logspace(10.7, 12.5, 60)])
    values = rng.random((6, len(grid))) * 0.4 + 0.3
    rows = rng.integers(0, 6, (400, 6))
    with_nan = values.copy()
    with_nan[2, 50:] = np.nan
    for vals in (values, with_nan):
        for target in (0.2, 0.5, 0.6, 0.65, 0.9):
            fast = stats.mean_curve_flops_resampled(vals, rows, grid, target)
            slow = np.array([stats.mean_curve_flops(vals[r], grid, target) for r in rows])
            assert np.array_equal(np.isinf(fast), np.isinf(slow)) and fast[np.isfinite(fast)] == pytest.approx(
                slow[np.isfinite(slow)], rel=1e-12), target
