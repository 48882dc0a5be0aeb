"""Human-facing views of a profile: a console table and a p-hat histogram PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def summary_table(summary: dict[str, Any], title: str) -> str:
    """A fixed-width two-column table of the summary numbers."""
    rows = [
        ("queries", f"{summary['num_queries']:,}"),
        ("samples per query (k)", f"{summary['num_samples']}"),
        ("trivial (p=1)", f"{summary['frac_trivial']:.1%}"),
        ("unsolvable (p=0)", f"{summary['frac_unsolvable']:.1%}"),
        ("mixed (0<p<1)", f"{summary['frac_mixed']:.1%}"),
        ("mean success", f"{summary['mean_success']:.3f}"),
        ("truncated samples", f"{summary['frac_truncated']:.1%}"),
        ("profile FLOPs", f"{summary['profile_flops']:.3e}"),
        ("wall time", f"{summary['wall_s']:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 18)
    body = "\n".join(f"{k:<{width}}  {v:>14}" for k, v in rows)
    return f"{title}\n{line}\n{body}\n{line}"


def p_hat_counts(outcomes: np.ndarray) -> np.ndarray:
    """Queries per number of successes j = 0..k: [k + 1] int."""
    k = outcomes.shape[1]
    return np.bincount(outcomes.sum(axis=1).astype(int), minlength=k + 1)


def save_histogram(outcomes: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = outcomes.shape[1]
    counts = p_hat_counts(outcomes)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    colors = ["#c0392b"] + ["#2980b9"] * (k - 1) + ["#7f8c8d"]
    ax.bar(np.arange(k + 1) / k, counts, width=0.8 / k, color=colors)
    ax.set_xlabel("p-hat (successes / k)")
    ax.set_ylabel("queries")
    ax.set_title(title, fontsize=10)
    ax.set_xticks(np.arange(k + 1) / k, [f"{j}/{k}" for j in range(k + 1)], fontsize=8)
    for x, c in zip(np.arange(k + 1) / k, counts):
        ax.text(x, c, str(int(c)), ha="center", va="bottom", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
