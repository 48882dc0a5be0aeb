"""Run a suite's jobs one after another, each as its own ``train.py`` process, skipping finished ones.

After each job its compact summary (evaluation history, FLOPs ledger, profile summary, the resolved
config and the command) is written next to the others under ``benchmarks/runs/<suite>/``: commit
them as they come and the report can be rebuilt, and the run continued, from the repository alone.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

import sgpo
from sgpo.bench.suite import RUNS_DIR, Job, job_overrides
from sgpo.io import atomic_write_json

SCHEMA = 1
WORK_DIR = sgpo.ROOT_DIR / "outputs" / "bench"  # the jobs' full run folders (not committed)
# kept from each evaluation: where it lies, and the ledger so far (the report's per-phase wasted shares)
HISTORY_KEYS = ("compute/total_flops", "train/steps", "eval/checkpoint_flops", "compute/profile_flops",
                "compute/rollout_flops", "compute/train_flops", "compute/wasted_flops")


def resolved_config(overrides: Sequence[str]) -> dict[str, Any]:
    """train.py's config for these overrides, resolved; the checkout's location is written ``<repo>``
    and ``paths`` left out, so a summary made in another clone has the same digest. A fresh copy
    on every call."""
    out = json.loads(_composed(tuple(overrides), str(sgpo.ROOT_DIR)))
    pool = (out.get("task") or {}).get("pool")
    file = pool and Path(pool["file"].replace("<repo>", str(sgpo.ROOT_DIR)))
    if file and file.is_file():  # a remade selection profile makes the mix's jobs stale
        pool["file_sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
    return out


@functools.cache
def _composed(overrides: tuple[str, ...], root: str) -> str:
    """The composed config as JSON text, paths written ``<repo>``. Cached: a Hydra compose takes
    about 0.35 s, and one ``python -m sgpo.bench`` call asks for each of its ~110 jobs' configs
    twice (which jobs are finished, then the report)."""
    try:
        with initialize_config_dir(config_dir=str(Path(root) / "conf"), version_base="1.3"):
            cfg = compose(config_name="train", overrides=list(overrides))
        out = OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as exc:  # a bad override in a suite file: say which
        raise ValueError(f"train.py {' '.join(overrides)}: {str(exc).splitlines()[0]}") from exc
    out.pop("paths", None)
    return json.dumps(out).replace(root, "<repo>")


# Config keys added after summaries were made, with the value that keeps the old behaviour: at that
# value a key is left out of the job key, so adding it leaves the finished jobs current.
NEUTRAL_KEYS: dict[tuple[str, ...], Any] = {("selection", "refit_prior"): False, ("algo", "train_rows"): None,
                                            ("algo", "train_rows_rule"): "max_variance", ("algo", "min_mixed_groups"): None}


UNKEYED = ("tuned_lr", "method_name")  # top-level keys that do not change what a job computes


def job_key(config: dict[str, Any]) -> str:
    """What decides whether a summary is still valid: the config without ``tuned_lr`` (the table of
    every method's rate; the job's own rate is in ``optim.lr``), so filling the table after tuning
    leaves finished jobs whose rate it does not change alone; without ``method_name`` (a label for
    reports: a preset renamed, its summaries renamed with it, stays finished); and
    without NEUTRAL_KEYS at their neutral values."""
    cfg = copy.deepcopy({k: v for k, v in config.items() if k not in UNKEYED})
    for path, value in NEUTRAL_KEYS.items():
        node = cfg
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node and node[path[-1]] == value:
            del node[path[-1]]
    return digest(cfg)


def digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def compact_summary(job: Job, overrides: Sequence[str], config: dict[str, Any], metrics: dict[str, Any],
                    wall_s: float) -> dict[str, Any]:
    """What the report needs from a finished job, and what reproduces it."""
    splits = tuple(config["eval"]["splits"])
    history = [{k: v for k, v in h.items() if k in HISTORY_KEYS or k.startswith(tuple(f"{s}/" for s in splits))}
               for h in metrics["eval_history"]]
    profile = None
    if metrics.get("profile/path"):
        path = Path(metrics["profile/path"]) / "summary.json"
        profile = json.loads(path.read_text()) if path.is_file() else None
    return {
        "schema": SCHEMA, "suite": job.suite, "mix": job.mix, "method": job.method, "seed": job.seed, "lr": job.lr,
        "digest": job_key(config), "git_commit": _git_commit(), "command": "python train.py " + " ".join(overrides),
        "made": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "wall_s": wall_s,
        "final": {k: v for k, v in metrics.items() if k != "eval_history" and not isinstance(v, (dict, list))},
        "eval_history": history, "profile": profile, "config": config,
    }


def is_current(summary: dict[str, Any], config: dict[str, Any]) -> bool:
    return "config" in summary and job_key(summary["config"]) == job_key(config)


def reusable(job: Job, config: dict[str, Any], runs_dir: Path = RUNS_DIR) -> tuple[Path, dict[str, Any]] | None:
    """A summary (its path, its content) of the same job (mix, method, seed, lr) with this config in
    another suite's folder: suites that share jobs (``ablations`` runs ``full``'s baselines) then run
    each of them once."""
    if not runs_dir.is_dir():
        return None
    for other in sorted(p for p in runs_dir.iterdir() if p.is_dir() and p.name != job.suite):
        src = other / job.summary_path(runs_dir).relative_to(runs_dir / job.suite)
        if src.is_file():
            summary = json.loads(src.read_text())
            if is_current(summary, config):
                return src, summary
    return None


def reuse(job: Job, found: tuple[Path, dict[str, Any]], runs_dir: Path = RUNS_DIR) -> dict[str, Any]:
    """Copy another suite's summary of this job (``reusable``'s answer) into this suite's folder;
    ``reused_from`` names it."""
    src, summary = found
    summary = dict(summary, suite=job.suite, reused_from=str(src.relative_to(runs_dir)))
    path = job.summary_path(runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, summary)
    return summary


def status(job: Job, config: dict[str, Any], runs_dir: Path = RUNS_DIR) -> str:
    """'done' (summary with this config), 'stale' (summary of another config) or 'todo'."""
    path = job.summary_path(runs_dir)
    if not path.is_file():
        return "todo"
    return "done" if is_current(json.loads(path.read_text()), config) else "stale"


def run_job(job: Job, suite: dict[str, Any], runs_dir: Path = RUNS_DIR, work_dir: Path = WORK_DIR,
            launch: Callable[[list[str], Path], int] | None = None) -> dict[str, Any]:
    """Run one job through train.py and write its summary; raises RuntimeError (with the log's path
    and tail) when train.py fails. ``launch(argv, log_path) -> returncode`` replaces the subprocess in tests."""
    overrides = job_overrides(job, suite)
    config = resolved_config(overrides)
    run_dir = work_dir / job.suite / job.label
    argv = [sys.executable, str(sgpo.ROOT_DIR / "train.py"), *overrides, f"paths.run_dir={run_dir}",
            f"hydra.run.dir={run_dir}"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").unlink(missing_ok=True)  # a stopped earlier attempt's file must not count
    log_path = run_dir / "train.log"
    started = time.time()
    code = (launch or _subprocess)(argv, log_path)
    metrics_path = run_dir / "metrics.json"
    if code != 0 or not metrics_path.is_file():
        tail = log_path.read_text(errors="replace").splitlines()[-15:] if log_path.is_file() else []
        raise RuntimeError(f"{job.label}: train.py exited with {code}; log {log_path}:\n" + "\n".join(tail))
    summary = compact_summary(job, overrides, config, json.loads(metrics_path.read_text()), time.time() - started)
    path = job.summary_path(runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, summary)
    return summary


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=sgpo.ROOT_DIR, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _subprocess(argv: list[str], log_path: Path) -> int:
    with open(log_path, "w") as log:
        return subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, cwd=sgpo.ROOT_DIR).returncode


def progress_line(index: int, total: int, job: Job, summary: dict[str, Any], metric: str, seconds_left: float) -> str:
    """One line per finished job: position, job, FLOPs reached, the metric, and time left."""
    last = summary["eval_history"][-1] if summary["eval_history"] else {}
    value = last.get(metric)
    shown = "n/a" if value is None else f"{value:.3f}"
    return (f"[{index}/{total}] {job.mix} {job.method}{'' if job.lr is None else f' lr={job.lr:g}'} seed {job.seed}: "
            f"{summary['final'].get('compute/total_flops', 0.0):.3e} FLOPs, {metric} {shown}, "
            f"{summary['wall_s']:.0f} s, ~{seconds_left / 60:.0f} min left")
