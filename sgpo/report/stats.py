"""Statistics for comparing methods by compute: FLOPs to a fraction of GRPO's gain, bootstrap
intervals over seeds, area under the curve over log-FLOPs and accuracy at equal compute.

A run's evaluation curve is two [E] float arrays: ``flops`` (total training FLOPs at each evaluation,
strictly increasing; the first point is the evaluation before training, at the method's profile
FLOPs or at 0) and ``acc`` (the metric at each evaluation, in [0, 1]). A method is a list of seeds'
curves. Between two evaluation points accuracy is taken as linear in log10(FLOPs); a segment that
starts at 0 FLOPs (where the log is undefined) is taken as linear in FLOPs instead.

A target never reached is ``inf`` FLOPs. JSON has no inf: ``json_safe`` writes it as None, which in
BENCHMARKS.json means "never reached" for FLOPs and "unbounded" for a ratio or interval end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

INF = float("inf")
TOL = 1e-12  # a target computed as before + f * gain may miss an equal accuracy by rounding


def _curve(flops, acc) -> tuple[np.ndarray, np.ndarray]:
    flops, acc = np.asarray(flops, dtype=float), np.asarray(acc, dtype=float)
    if flops.ndim != 1 or flops.shape != acc.shape or len(flops) == 0:
        raise ValueError(f"flops and acc must be 1-D of equal, non-zero length, got {flops.shape} and {acc.shape}")
    if np.any(np.diff(flops) <= 0) or flops[0] < 0:
        raise ValueError(f"flops must be >= 0 and strictly increasing, got {flops}")
    return flops, acc


def _between(f0: float, f1: float, t: float) -> float:
    """The point a fraction t of the way from f0 to f1: in log10 FLOPs, or in FLOPs when f0 == 0."""
    return f0 + t * (f1 - f0) if f0 == 0 else 10 ** (math.log10(f0) + t * (math.log10(f1) - math.log10(f0)))


def baseline_gain(curves: Sequence[tuple[Sequence[float], Sequence[float]]]) -> tuple[float, float, float]:
    """(before, final, gain) = medians over seeds of acc[0], acc[-1] and acc[-1] - acc[0].

    curves: one (flops, acc) pair per seed. The gain is the median of the per-seed gains, which is not
    in general final - before.
    """
    accs = [_curve(f, a)[1] for f, a in curves]
    first, last = np.array([a[0] for a in accs]), np.array([a[-1] for a in accs])
    return float(np.median(first)), float(np.median(last)), float(np.median(last - first))


def target_for(before: float, gain: float, fraction: float) -> float:
    """The accuracy target before + fraction * gain, with before and gain from the baseline (GRPO).

    One ``before`` serves every method: all start from the same policy, so their first evaluations
    measure the same accuracy up to evaluation noise, and one shared target keeps the FLOPs-to-target
    comparable. Methods differ only in where that first point sits (their profile FLOPs, or 0), and
    that offset is charged by flops_to_reach, not by moving the target.
    """
    return before + fraction * gain


def flops_to_reach(flops, acc, target: float) -> float:
    """Total FLOPs at which the curve first reaches ``target``; inf if it never does.

    If acc[0] >= target: flops[0]. Otherwise, with i the first point where acc[i] >= target,
    t = (target - acc[i-1]) / (acc[i] - acc[i-1]) and the crossing is
    10 ** (log10 f[i-1] + t * (log10 f[i] - log10 f[i-1])), or f[i-1] + t * (f[i] - f[i-1]) when
    f[i-1] == 0. Only the first crossing counts, even if the curve later drops below again.
    """
    flops, acc = _curve(flops, acc)
    hit = np.flatnonzero(acc >= target - TOL)
    if len(hit) == 0:
        return INF
    i = int(hit[0])
    if i == 0:
        return float(flops[0])
    t = min(max((target - acc[i - 1]) / (acc[i] - acc[i - 1]), 0.0), 1.0)
    return float(_between(flops[i - 1], flops[i], t))


def acc_at(flops, acc, budget: float) -> float:
    """Accuracy at ``budget`` FLOPs, interpolated like flops_to_reach (log-linear; linear from 0 FLOPs).

    nan before the first point (the run had not started). Beyond the last point the curve is held flat
    up to 1% past it (the runs of a comparison end at nearly, not exactly, the same FLOPs); nan beyond.
    """
    flops, acc = _curve(flops, acc)
    if budget < flops[0] or budget > flops[-1] * 1.01:
        return float("nan")
    if budget >= flops[-1]:
        return float(acc[-1])
    j = int(np.searchsorted(flops, budget, side="right")) - 1
    f0, f1 = flops[j], flops[j + 1]
    t = (budget - f0) / (f1 - f0) if f0 == 0 else (math.log10(budget) - math.log10(f0)) / (math.log10(f1) - math.log10(f0))
    return float(acc[j] + t * (acc[j + 1] - acc[j]))


def auc_log_flops(flops, acc, lo: float, hi: float) -> float:
    """Mean accuracy over log-compute: integral of acc d(log10 F) over [lo, hi] / (log10 hi - log10 lo).

    The curve is linear in log10 FLOPs between points and held flat from its last point up to hi. It
    is undefined left of its first positive-FLOPs point (a point at 0 FLOPs has no place on a log
    axis and is left out), so lo must be at or past it: to compare runs, take lo = the largest of
    their first positive points and hi = a common budget.
    """
    flops, acc = _curve(flops, acc)
    pos = flops > 0
    u, a = np.log10(flops[pos]), acc[pos]
    if not 0 < lo < hi or math.log10(lo) < u[0] - TOL:
        raise ValueError(f"need {10 ** u[0]:.3e} (first positive point) <= lo < hi, got lo={lo:.3e}, hi={hi:.3e}")
    ulo, uhi = math.log10(lo), math.log10(hi)
    grid = np.concatenate([[ulo], u[(u > ulo) & (u < uhi)], [uhi]])
    vals = np.interp(grid, u, a)  # np.interp holds the last value flat to the right
    return float(np.sum((vals[1:] + vals[:-1]) / 2 * np.diff(grid)) / (uhi - ulo))


def _medians(samples: np.ndarray) -> np.ndarray:
    """Medians along the last axis by sorting (inf-safe: a middle pair (x, inf) averages to inf)."""
    s, n = np.sort(samples, axis=-1), samples.shape[-1]
    return s[..., n // 2] if n % 2 else (s[..., n // 2 - 1] + s[..., n // 2]) / 2


def median(values) -> float:
    """Median of per-seed values [n] that may hold inf (never reached): inf when the upper middle is."""
    return float(_medians(np.asarray(values, dtype=float)))


def _quantile(sorted_x: np.ndarray, q: float) -> float:
    """Linear-interpolation quantile (numpy's default) that stays inf, not nan, next to inf values."""
    pos = q * (len(sorted_x) - 1)
    i, t = int(math.floor(pos)), pos - math.floor(pos)
    a, b = sorted_x[i], sorted_x[min(i + 1, len(sorted_x) - 1)]
    return float(a if t == 0 or a == b else a + t * (b - a))


def _interval(boot: np.ndarray, ci: float) -> list[float]:
    s = np.sort(boot)
    return [_quantile(s, (1 - ci) / 2), _quantile(s, (1 + ci) / 2)]


def _ratio(base_med, method_med):
    """base / method, with method inf -> 0 (never reached) and base inf, method finite -> inf."""
    b, m = np.asarray(base_med, dtype=float), np.asarray(method_med, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(np.isinf(m), 0.0, np.where(np.isinf(b), INF, b / m))
    return np.where((m == 0) & (b == 0), 1.0, r)  # both reached at 0 FLOPs: equally cheap


def bootstrap_ratio(base_values, method_values, n_boot: int = 10000, seed: int = 0, ci: float = 0.95,
                    base_budgets=None) -> dict:
    """Ratio of median FLOPs-to-target, baseline / method (> 1: the method is cheaper), over seeds.

    base_values [n_b], method_values [n_m]: per-seed FLOPs to the target (inf: never reached).
    median: the ratio of the plain medians. ci: percentile interval of the ratio over ``n_boot``
    resamples, each drawing n_b baseline and n_m method seeds with replacement, independently per
    group. A median is inf when its upper middle value is (over half of an odd count, half or more
    of an even count).
    Conventions: method median inf -> 0 (never reached); baseline inf and method finite -> inf.
    never: how many method seeds never reached the target.
    lower_bound: when the baseline median is inf and the method's finite, and base_budgets [n_b] (each
    baseline seed's final FLOPs) is given: median(baseline values with inf replaced by the seed's
    budget) / method median. A seed that never reached the target would have needed more than its
    budget, and the median is monotone, so the true ratio is at least this. Otherwise None.
    """
    b, m = np.asarray(base_values, dtype=float), np.asarray(method_values, dtype=float)
    rng = np.random.default_rng(seed)
    boot_b = _medians(b[rng.integers(0, len(b), (n_boot, len(b)))])
    boot_m = _medians(m[rng.integers(0, len(m), (n_boot, len(m)))])
    med_b, med_m = _medians(b), _medians(m)
    lower = None
    if base_budgets is not None and np.isinf(med_b) and np.isfinite(med_m):
        lower = float(_ratio(_medians(np.where(np.isinf(b), np.asarray(base_budgets, dtype=float), b)), med_m))
    return {"median": float(_ratio(med_b, med_m)), "ci": _interval(_ratio(boot_b, boot_m), ci),
            "never": int(np.isinf(m).sum()), "lower_bound": lower}


def bootstrap_median(values, n_boot: int = 10000, seed: int = 0, ci: float = 0.95) -> dict:
    """{median, ci} of finite per-seed values [n] (final accuracy, accuracy at equal compute)."""
    x = np.asarray(values, dtype=float)
    boot = _medians(x[np.random.default_rng(seed).integers(0, len(x), (n_boot, len(x)))])
    return {"median": float(_medians(x)), "ci": _interval(boot, ci)}


def bootstrap_diff(base_values, method_values, n_boot: int = 10000, seed: int = 0, ci: float = 0.95) -> dict:
    """{median, ci} of median(method) - median(base) (> 0: the method is more accurate), seeds
    resampled independently per group as in bootstrap_ratio."""
    b, m = np.asarray(base_values, dtype=float), np.asarray(method_values, dtype=float)
    rng = np.random.default_rng(seed)
    boot_b = _medians(b[rng.integers(0, len(b), (n_boot, len(b)))])
    boot_m = _medians(m[rng.integers(0, len(m), (n_boot, len(m)))])
    return {"median": float(_medians(m) - _medians(b)), "ci": _interval(boot_m - boot_b, ci)}


def curves_on_grid(curves: Sequence[tuple[Sequence[float], Sequence[float]]], grid) -> np.ndarray:
    """[R, len(grid)] each run's accuracy at the grid's FLOPs (acc_at: log-linear between its
    evaluations); left of a run's first evaluation (a profile being paid) its first value, since the
    policy has not changed yet; past its last point (beyond acc_at's 1% hold) nan."""
    out = np.empty((len(curves), len(grid)))
    for r, (flops, acc) in enumerate(curves):
        f, a = _curve(flops, acc)
        out[r] = [float(a[0]) if x < f[0] else acc_at(f, a, x) for x in grid]
    return out


def mean_curve_flops(values: np.ndarray, grid, target: float) -> float:
    """FLOPs at which the mean over runs (rows of ``values`` [R, G] on ``grid`` [G]) first reaches
    ``target`` (flops_to_reach on the grid; inf if never)."""
    mean = np.nanmean(values, axis=0)
    ok = np.isfinite(mean)
    return flops_to_reach(np.asarray(grid, dtype=float)[ok], mean[ok], target)


def curves_mean_flops(curves, grid, target: float) -> float:
    """mean_curve_flops of raw (flops, acc) runs: put them on ``grid`` [G] (curves_on_grid), then
    find where their mean first reaches ``target``."""
    return mean_curve_flops(curves_on_grid(curves, grid), grid, target)


def mean_curve_flops_resampled(values: np.ndarray, rows: np.ndarray, grid, target: float) -> np.ndarray:
    """[B] mean_curve_flops of each resample: ``rows`` [B, n] indexes the runs (rows of ``values``
    [R, G]) averaged in each. Vectorised over resamples, with flops_to_reach's interpolation on the
    grid; a resample whose mean curve has a non-finite point goes through mean_curve_flops itself."""
    grid = np.asarray(grid, dtype=float)
    means = values[rows].mean(axis=1)  # [B, G]; nan wherever a run in the resample is nan
    hit = means >= target - TOL
    first = hit.argmax(axis=1)
    out = np.full(len(rows), INF)
    reached = hit.any(axis=1)
    out[reached & (first == 0)] = grid[0]
    inner = np.flatnonzero(reached & (first > 0))
    i = first[inner]
    a0, a1 = means[inner, i - 1], means[inner, i]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.clip((target - a0) / (a1 - a0), 0.0, 1.0)
        f0, f1 = grid[i - 1], grid[i]
        log = 10 ** (np.log10(np.where(f0 > 0, f0, 1.0)) + t * (np.log10(f1) - np.log10(np.where(f0 > 0, f0, 1.0))))
    out[inner] = np.where(f0 == 0, f0 + t * (f1 - f0), log)
    for b in np.flatnonzero(~np.isfinite(means).all(axis=1)):  # rare: a run's curve ends inside the grid
        out[b] = mean_curve_flops(values[rows[b]], grid, target)
    return out


def bootstrap_mean_curve_ratio(base_curves, method_curves, target: float, grid, n_boot: int = 10000, seed: int = 0,
                               ci: float = 0.95) -> dict:
    """Baseline / method FLOPs at which each group's seed-mean curve reaches ``target``.

    Averaging the curves before finding the crossing is less noisy than the median of per-seed
    crossings (bootstrap_ratio) when the target sits where the curves flatten. ``grid`` [G]: shared
    FLOPs points (e.g. log-spaced up to the common budget); median: the ratio for the groups as they
    are; ci: percentile interval over ``n_boot`` resamples of the runs, with replacement,
    independently per group. Conventions as in bootstrap_ratio (never reached: inf, ratio 0).
    never: 1 when the method's seed-mean curve never reaches the target on the grid, else 0.
    lower_bound: when the baseline's mean curve never reaches it and the method's does, grid[-1] /
    method FLOPs (the baseline would have needed more than the grid's end); otherwise None.
    """
    gb, gm = curves_on_grid(base_curves, grid), curves_on_grid(method_curves, grid)
    rng = np.random.default_rng(seed)
    b = mean_curve_flops_resampled(gb, rng.integers(0, len(gb), (n_boot, len(gb))), grid, target)
    m = mean_curve_flops_resampled(gm, rng.integers(0, len(gm), (n_boot, len(gm))), grid, target)
    fb, fm = mean_curve_flops(gb, grid, target), mean_curve_flops(gm, grid, target)
    lower = float(grid[-1]) / fm if math.isinf(fb) and math.isfinite(fm) and fm > 0 else None
    return {"median": float(_ratio(fb, fm)), "ci": _interval(_ratio(b, m), ci), "base_flops": fb, "method_flops": fm,
            "never": int(math.isinf(fm)), "lower_bound": lower}


def aa_check(ratio: dict, band: tuple[float, float] = (0.8, 1.25)) -> tuple[bool, str]:
    """A/A check of a bootstrap_ratio result (GRPO against GRPO on other seeds): ok when its interval
    contains 1 and lies inside ``band``."""
    lo, hi = ratio["ci"]
    has_one, inside = lo <= 1 <= hi, band[0] <= lo and hi <= band[1]
    why = "ok" if has_one and inside else "; ".join(
        ([] if has_one else ["the interval excludes 1: the seed groups differ"])
        + ([] if inside else [f"the interval is not inside [{band[0]}, {band[1]}]: too few seeds or too noisy"]))
    return has_one and inside, f"A/A ratio {ratio['median']:.3f}, interval [{lo:.3f}, {hi:.3f}]: {why}"


def json_safe(x):
    """x with every inf or nan float (numpy included) replaced by None, through dicts, lists and tuples."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x
