"""Read the runs of a train.py multirun: each job's config, metrics.json and evaluation history."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml


@dataclass
class Run:
    """One finished job: its folder, method label, seed, final metrics and the eval curve.

    curve_flops, curve_pass1: [E] total FLOPs and test pass@1 at each evaluation, in order.
    """

    folder: Path
    method: str
    seed: int
    config: dict[str, Any]
    metrics: dict[str, Any]
    curve_flops: np.ndarray = field(repr=False)
    curve_pass1: np.ndarray = field(repr=False)


def read_run(folder: Path, split: str = "test") -> Run:
    metrics = json.loads((folder / "metrics.json").read_text())
    config_path = folder / ".hydra" / "config.yaml"
    config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
    history = [h for h in metrics.get("eval_history", []) if f"{split}/pass@1" in h]
    return Run(
        folder=folder,
        method=str(config.get("method_name", "unknown")),
        seed=int(config.get("seed", 0)),
        config=config,
        metrics=metrics,
        curve_flops=np.array([h["compute/total_flops"] for h in history], dtype=float),
        curve_pass1=np.array([h[f"{split}/pass@1"] for h in history], dtype=float),
    )


def read_multirun(folder: str | Path, split: str = "test") -> list[Run]:
    """Every job folder below ``folder`` that holds a metrics.json (jobs still running are skipped)."""
    folder = Path(folder)
    runs = [read_run(p.parent, split) for p in sorted(folder.glob("**/metrics.json"))]
    if not runs:
        raise FileNotFoundError(f"no metrics.json under {folder}: is it a train.py multirun folder?")
    return runs


def flops_to_reach(run: Run, target: float) -> float:
    """Total FLOPs at the first evaluation with pass@1 >= target (inf if never)."""
    hit = np.flatnonzero(run.curve_pass1 >= target - 1e-12)
    return float(run.curve_flops[hit[0]]) if len(hit) else float("inf")


def pass1_at(run: Run, flops: float) -> float:
    """pass@1 of the last evaluation at or below ``flops`` total FLOPs (a step function)."""
    idx = np.flatnonzero(run.curve_flops <= flops * (1 + 1e-9))
    return float(run.curve_pass1[idx[-1]]) if len(idx) else float("nan")
