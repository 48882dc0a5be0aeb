"""PNG plots of a multirun: pass@1 against total FLOPs, the p-hat histogram, the group-size mix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sgpo.report.runs import Run, pass1_at


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish(fig, ax, path: Path, **legend: Any) -> None:
    """Legend (``legend``: more ``ax.legend`` arguments, e.g. where), grid, tight layout, then the
    PNG written and the figure closed."""
    ax.legend(fontsize=8, **legend)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    _plt().close(fig)


def plot_pass1_vs_flops(groups: dict[str, list[Run]], path: Path, target: float | None) -> None:
    """One line per method (median over seeds of the step curves on a shared log grid), min-max band."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    # log axis: the "before training" point of unprofiled runs sits at 0 FLOPs and is left off
    lo = min(r.curve_flops[r.curve_flops > 0].min() for rs in groups.values() for r in rs)
    hi = max(r.curve_flops.max() for rs in groups.values() for r in rs)
    grid = np.geomspace(lo, hi, 200)
    for method, runs in sorted(groups.items()):
        curves = np.array([[pass1_at(r, x) for x in grid] for r in runs])
        reach = grid <= min(r.curve_flops.max() for r in runs) * (1 + 1e-9)
        med = np.nanmedian(curves, axis=0)
        ax.plot(grid[reach], med[reach], label=f"{method} (n={len(runs)})")
        ax.fill_between(grid[reach], np.nanmin(curves, axis=0)[reach], np.nanmax(curves, axis=0)[reach], alpha=0.2)
    if target is not None:
        ax.axhline(target, color="k", ls="--", lw=0.8, label=f"target {target:.3f}")
    ax.set_xscale("log")
    ax.set_xlabel("total FLOPs (profile + rollout + train)")
    ax.set_ylabel("test pass@1 (greedy)")
    finish(fig, ax, path)


def plot_group_mix(groups: dict[str, list[Run]], path: Path) -> None:
    """Stacked bars: queries per group size for each method (first seed's data summary)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    methods = sorted(groups)
    sizes = sorted({int(g) for rs in groups.values() for g in rs[0].metrics.get("data/group_size_mix", {})})
    bottom = np.zeros(len(methods))
    for g in sizes:
        counts = np.array([groups[m][0].metrics.get("data/group_size_mix", {}).get(str(g), 0) for m in methods], float)
        ax.bar(methods, counts, bottom=bottom, label=f"G={g}")
        bottom += counts
    ax.set_ylabel("queries trained on")
    ax.legend(fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=20, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
