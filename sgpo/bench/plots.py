"""The benchmark's plots: each mix's curves (metric against total FLOPs), and the FLOPs ratio to GRPO
against GRPO's zero-advantage share across mixes (where does a method pay?)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sgpo.bench.analysis import curve
from sgpo.report import stats
from sgpo.report.plots import _plt, finish


def plot_curves(jobs: list[dict[str, Any]], metric: str, path: Path, title: str, targets: dict[str, float] | None) -> None:
    """One line per method: the mean over seeds of the interpolated curves on a shared log grid (the
    seed-mean curve whose target crossings the FLOPs ratios compare), with the min-max band; dashed
    lines at the targets."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    by_method: dict[str, list] = {}
    for j in jobs:
        by_method.setdefault(j["method"], []).append(curve(j, metric))
    lo = max(float(f[f > 0][0]) for cs in by_method.values() for f, _ in cs)
    hi = max(float(f[-1]) for cs in by_method.values() for f, _ in cs)
    grid = np.geomspace(lo, hi, 200)
    for method, cs in sorted(by_method.items()):
        ys = np.array([[stats.acc_at(f, a, x) if x >= f[0] else np.nan for x in grid] for f, a in cs])
        reach = np.all(np.isfinite(ys), axis=0)
        if not reach.any():
            continue
        ax.plot(grid[reach], np.mean(ys[:, reach], axis=0), label=f"{method} (n={len(cs)})")
        ax.fill_between(grid[reach], ys[:, reach].min(axis=0), ys[:, reach].max(axis=0), alpha=0.15)
    for name, t in (targets or {}).items():
        ax.axhline(t, color="k", ls="--", lw=0.6)
        ax.text(grid[0], t, f" {name}", fontsize=7, va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("total FLOPs (profile + rollout + train)")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=10)
    finish(fig, ax, path)


def ratio_points(report: dict[str, Any], fraction: str = "f90", baseline: str = "grpo") -> dict[str, np.ndarray]:
    """Per method, [P, 4] rows (GRPO's zero-advantage share, ratio, lower error, upper error) over the
    mixes that have both numbers, sorted by share: the ratio is the seed-mean-curve ratio to
    ``baseline`` at ``fraction``, the errors its distances to the 95% interval's ends (0 where the
    interval is unknown or, as a percentile interval may, lies on one side of the ratio)."""
    points: dict[str, list[tuple[float, float, float, float]]] = {}
    for mix in report["mixes"].values():
        share = mix.get("grpo_zero_adv_share")
        for method, m in mix.get("methods", {}).items():
            r = m.get("ratio_vs", {}).get(baseline, {}).get(fraction)
            if share is None or r is None or r["median"] is None or not np.isfinite(r["median"]) or r["median"] == 0:
                continue
            lo, hi = (x if x is not None and np.isfinite(x) else np.nan for x in r["ci"])
            y = r["median"]
            points.setdefault(method, []).append((share, y, max(0.0, np.nan_to_num(y - lo)), max(0.0, np.nan_to_num(hi - y))))
    return {method: np.array(sorted(pts)) for method, pts in points.items()}


def never_points(report: dict[str, Any], fraction: str = "f90", baseline: str = "grpo") -> dict[str, np.ndarray]:
    """Per method, [P, 2] rows (GRPO's zero-advantage share, bound) for the mixes where the method's
    seed-mean curve never reaches the target, sorted by share: it did not within the mix's
    equal-compute FLOPs, so its ratio is below bound = baseline FLOPs to the target / those FLOPs."""
    points: dict[str, list[tuple[float, float]]] = {}
    for mix in report["mixes"].values():
        share, budget = mix.get("grpo_zero_adv_share"), mix.get("equal_compute_flops")
        for method, m in mix.get("methods", {}).items():
            r = m.get("ratio_vs", {}).get(baseline, {}).get(fraction)
            if share is None or not budget or r is None or not r.get("never") or not r.get("base_flops"):
                continue
            points.setdefault(method, []).append((share, r["base_flops"] / budget))
    return {method: np.array(sorted(pts)) for method, pts in points.items()}


def plot_ratio_vs_share(report: dict[str, Any], path: Path, fraction: str = "f90", baseline: str = "grpo") -> bool:
    """FLOPs ratio to ``baseline`` at ``fraction`` (seed-mean-curve ratio, 95% interval) against GRPO's zero-advantage
    share, one line per method over the mixes (ratio_points). A mix where the method never reaches the target
    (never_points) is a downward triangle at the ratio's upper bound, and the method's line breaks there rather
    than joining its neighbours across it. False (nothing drawn) when no mix has both numbers."""
    points = ratio_points(report, fraction, baseline)
    if not points:
        return False
    never = never_points(report, fraction, baseline)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 4), dpi=110)
    for method, pts in sorted(points.items()):
        gaps = never.get(method, np.zeros((0, 2)))
        rows = np.vstack([pts, np.column_stack([gaps[:, 0], np.full((len(gaps), 3), np.nan)])]) if len(gaps) else pts
        x, y, below, above = rows[np.argsort(rows[:, 0], kind="stable")].T
        bars = ax.errorbar(x, y, yerr=[np.nan_to_num(below), np.nan_to_num(above)], marker="o", capsize=3, label=method)
        if len(gaps):  # dodged sideways, so two methods' bounds at one mix (often equal) both show
            dodge = 0.006 * sum(m < method for m in never)
            ax.plot(gaps[:, 0] + dodge, gaps[:, 1], marker="v", ls="none", ms=9, color=bars[0].get_color(),
                    label=f"{method}: never (ratio below)")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xlabel("GRPO's zero-advantage share at G = 8 before training")
    ax.set_ylabel(f"FLOPs ratio {baseline} / method at {fraction} (> 1: cheaper)")
    ax.set_yscale("log")
    finish(fig, ax, path, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never hides a point
    return True
