"""A benchmark suite (``conf/bench/<name>.yaml``) as a list of jobs, and where each job's summary lives.

A job is one ``train.py`` run: a difficulty mix, a method, a seed and (tuning only) a learning rate.
Its compact summary is ``benchmarks/runs/<suite>/<mix>/<method>[-lr<lr>]-s<seed>.json``; a job
whose summary exists with the same configuration digest is finished and is not run again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

import sgpo

CONF_DIR = sgpo.ROOT_DIR / "conf" / "bench"
RUNS_DIR = sgpo.ROOT_DIR / "benchmarks" / "runs"
KEYS = {"name", "mixes", "methods", "baselines", "seeds", "aa_seeds", "overrides", "mix_tasks", "lrs", "mix_seeds",
        "companions"}
OPTIONAL = {"lrs", "mix_seeds", "companions"}


@dataclass(frozen=True)
class Job:
    suite: str
    mix: str
    method: str
    seed: int
    lr: float | None = None

    @property
    def label(self) -> str:
        lr = "" if self.lr is None else f"-lr{self.lr:g}"
        return f"{self.mix}/{self.method}{lr}-s{self.seed}"

    def summary_path(self, runs_dir: Path = RUNS_DIR) -> Path:
        return runs_dir / self.suite / f"{self.label}.json"


def known_suites(but: str | None = None) -> list[str]:
    """The suites in conf/bench/ (for error messages), leaving out ``but``."""
    return sorted(p.stem for p in CONF_DIR.glob("*.yaml") if p.stem != but)


def suite_path(name: str) -> Path:
    """A suite's file: a YAML file's path as given, else conf/bench/<name>.yaml."""
    return Path(name) if name.endswith((".yaml", ".yml")) else CONF_DIR / f"{name}.yaml"


def load_suite(name: str) -> dict[str, Any]:
    """The suite's settings (conf/bench/<name>.yaml, or a YAML file's path), checked: every key
    known, every mix mapped to a task preset, A/A seeds apart from the default mix's seeds."""
    path = suite_path(name)
    if not path.is_file():
        raise ValueError(f"unknown benchmark suite {name!r} (no {path}); known: {', '.join(known_suites())}")
    suite = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    unknown = set(suite) - KEYS
    missing = KEYS - OPTIONAL - set(suite)
    if unknown or missing:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    bad = [m for m in suite["mixes"] if m not in suite["mix_tasks"]]
    if bad:
        raise ValueError(f"{path}: mixes {bad} have no entry in mix_tasks ({sorted(suite['mix_tasks'])})")
    suite["aa_seeds"] = suite["aa_seeds"] or []
    suite["mix_seeds"] = suite.get("mix_seeds") or {}
    stray = sorted(set(suite["mix_seeds"]) - set(suite["mixes"]))
    if stray:
        raise ValueError(f"{path}: mix_seeds names mixes {stray} that are not in mixes {suite['mixes']}")
    suite["companions"] = check_companions(suite.get("companions") or [], suite["name"], path)
    if suite["aa_seeds"] and "default" not in suite["mix_tasks"]:
        raise ValueError(f"{path}: aa_seeds run GRPO on the default mix: add `default` to mix_tasks")
    bench = seeds_of(suite, "default")
    if suite["aa_seeds"] and set(suite["aa_seeds"]) & set(bench):
        raise ValueError(f"{path}: aa_seeds {suite['aa_seeds']} must not overlap the default mix's seeds {bench}")
    return suite


def check_companions(companions: Any, name: str, path: Path) -> list[str]:
    """``companions``: a list of other suites (names in conf/bench/ or YAML paths), none a tuning
    suite (``lrs``: no FLOPs ratios). Their files are read here, not loaded, so suites that name
    each other do not recurse."""
    if not isinstance(companions, list) or not all(isinstance(c, str) for c in companions):
        raise ValueError(f"{path}: companions must be a list of suite names, e.g. [pods, ablations]; got {companions!r}")
    for other in companions:
        other_path = suite_path(other)
        if other == name or not other_path.is_file() or other_path.resolve() == path.resolve():
            raise ValueError(f"{path}: companions names {other!r}: not another suite in {CONF_DIR} "
                             f"({', '.join(known_suites(but=name))})")
        if "lrs" in OmegaConf.load(other_path):
            raise ValueError(f"{path}: companions names {other!r}, a tuning suite (lrs): it has no FLOPs ratios to show")
    return companions


def seeds_of(suite: dict[str, Any], mix: str) -> list[int]:
    """The benchmark seeds of one mix: ``mix_seeds[mix]`` where given, else ``seeds``."""
    return list((suite.get("mix_seeds") or {}).get(mix, suite["seeds"]))


def jobs_of(suite: dict[str, Any]) -> list[Job]:
    """Every job of the suite, in run order: the A/A seeds first (GRPO on the default mix: the check
    on the instrument itself decides whether the rest can resolve anything), then in rounds: the
    i-th seed of every mix (mixes as listed, each with its own seeds_of), method by method, then
    the (i+1)-th. A stopped run so leaves whole seeds of every method and the same number of seeds
    on every mix that has that many, rather than every seed of one mix and none of the next."""
    lrs = suite.get("lrs") or [None]
    jobs = [Job(suite["name"], "default", "grpo", seed) for seed in suite["aa_seeds"]]
    seeds = {mix: seeds_of(suite, mix) for mix in suite["mixes"]}
    for i in range(max(len(s) for s in seeds.values())):
        for mix in suite["mixes"]:
            if i < len(seeds[mix]):
                jobs += [Job(suite["name"], mix, method, seeds[mix][i], lr)
                         for method in suite["methods"] for lr in lrs]
    return jobs


def job_overrides(job: Job, suite: dict[str, Any]) -> list[str]:
    """The train.py overrides of a job (run folders are added by the runner)."""
    out = list(suite["overrides"]) + [f"method={job.method}", f"task={suite['mix_tasks'][job.mix]}", f"seed={job.seed}"]
    return out + ([] if job.lr is None else [f"optim.lr={job.lr}"])
