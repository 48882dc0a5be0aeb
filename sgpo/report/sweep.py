"""The sampling-budget x allocation-rule view of a multirun: a table and a heat-map.

Rows are k (``profile.num_samples``), columns the allocation rule (``allocation.name``); a cell
holds the median over seeds of the total FLOPs to reach the target and of the final pass@1.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np

from sgpo.report.runs import Run, flops_to_reach

ROW_KEY, COL_KEY = "profile.num_samples", "allocation.name"


def config_value(run: Run, dotted: str) -> Any:
    """A value of the run's composed config by dotted key (None if absent)."""
    node: Any = run.config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if dotted == ROW_KEY and not (run.config.get("profile") or {}).get("enabled", True):
        return "none"  # a profile-free run draws no samples
    return node


def varying_keys(runs: list[Run], keys: tuple[str, ...] = (ROW_KEY, COL_KEY)) -> list[str]:
    """Which of ``keys`` take more than one value across the runs."""
    return [k for k in keys if len({str(config_value(r, k)) for r in runs}) > 1]


def label(run: Run, keys: list[str]) -> str:
    """The method name, plus the swept values when the sweep varies k or the allocation rule."""
    short = {ROW_KEY: "k", COL_KEY: "allocation"}
    parts = [f"{short.get(k, k)}={config_value(run, k)}" for k in keys]
    return run.method if not parts else f"{run.method} [{', '.join(parts)}]"


def _sort_key(value: str):
    return (0, int(value)) if value.isdigit() else (1, value)


def grid(runs: list[Run], target: float) -> dict[str, Any]:
    """{rows, cols, cells[row][col] = {seeds, flops_to_target, final_pass1}} over every run."""
    cells: dict[str, dict[str, list[Run]]] = {}
    for r in runs:
        cells.setdefault(str(config_value(r, ROW_KEY)), {}).setdefault(str(config_value(r, COL_KEY)), []).append(r)
    rows = sorted(cells, key=_sort_key)
    cols = sorted({c for row in cells.values() for c in row}, key=_sort_key)
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        for col, members in cells[row].items():
            reach = [flops_to_reach(r, target) for r in members]
            finite = [x for x in reach if np.isfinite(x)]
            out.setdefault(row, {})[col] = {
                "seeds": sorted(r.seed for r in members),
                # median over seeds; None when most seeds never reach the target
                "flops_to_target": float(statistics.median(reach)) if len(finite) * 2 > len(reach) else None,
                "final_pass1": float(statistics.median(float(r.metrics["test/pass@1"]) for r in members)),
            }
    return {"row_key": ROW_KEY, "col_key": COL_KEY, "rows": rows, "cols": cols, "cells": out}


def markdown(table: dict[str, Any]) -> list[str]:
    cols = table["cols"]
    lines = ["## Sampling budget x allocation rule", "",
             f"Rows: k (`{table['row_key']}`); columns: `{table['col_key']}`. "
             "Cell: total FLOPs to reach the target / final test pass@1 (medians over seeds).", "",
             "| k | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for row in table["rows"]:
        cells = []
        for col in cols:
            cell = table["cells"][row].get(col)
            if cell is None:
                cells.append("-")
                continue
            reach = "never" if cell["flops_to_target"] is None else f"{cell['flops_to_target']:.2e}"
            cells.append(f"{reach} / {cell['final_pass1']:.3f}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines + ["", "![sweep heat-map](sweep_heatmap.png)", ""]


def plot_heatmap(table: dict[str, Any], path: Path) -> None:
    """Colour: final test pass@1; text: FLOPs to target (\"never\" if not reached) and pass@1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = table["rows"], table["cols"]
    values = np.full((len(rows), len(cols)), np.nan)
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            cell = table["cells"][row].get(col)
            if cell is not None:
                values[i, j] = cell["final_pass1"]
    fig, ax = plt.subplots(figsize=(1.9 * len(cols) + 2, 0.9 * len(rows) + 1.6), dpi=110)
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            cell = table["cells"][row].get(col)
            if cell is None:
                continue
            reach = "never" if cell["flops_to_target"] is None else f"{cell['flops_to_target']:.2e}"
            ax.text(j, i, f"{cell['final_pass1']:.3f}\n{reach}", ha="center", va="center", fontsize=8,
                    color="w" if values[i, j] < np.nanmean(values) else "k")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), [f"k={r}" for r in rows])
    ax.set_xlabel("allocation rule")
    ax.set_ylabel("profile samples per query")
    ax.set_title("final test pass@1 (FLOPs to target below)", fontsize=9)
    fig.colorbar(image, ax=ax, label="test pass@1")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
