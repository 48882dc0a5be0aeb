"""Multiruns: one profiling pass per fingerprint across a k x allocation sweep, parallel jobs
sharing a profile, launcher and Optuna presets, wandb groups/tags/media read back offline, and
the sweep report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_cli
from hydra import compose, initialize_config_dir

CONF = REPO / "conf"


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize("preset, target", [
    ("sequential", "hydra._internal.core_plugins.basic_launcher.BasicLauncher"),
    ("local_parallel", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"),
    ("slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"),
])
def test_launcher_presets_compose_to_their_plugin(preset, target):
    cfg = compose_train(f"hydra/launcher={preset}")
    assert cfg.hydra.launcher._target_ == target
    if preset == "local_parallel":
        assert cfg.hydra.launcher.n_jobs == 2
    if preset == "slurm":
        assert cfg.hydra.launcher.gpus_per_node == 1 and cfg.hydra.launcher.timeout_min == 240


def test_default_launcher_is_the_basic_one():
    assert compose_train().hydra.launcher._target_.endswith("BasicLauncher")


def test_optuna_search_space_and_budget():
    cfg = compose_train("hparams_search=sgpo_optuna")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert set(sweeper.params) == {"optim.lr", "filter.trivial_threshold", "filter.keep_unsolvable"}
    assert cfg.optimized_metric == "test/pass@1" and cfg.train.max_total_flops == 3e12
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"


def _profile_folders(out: Path) -> list[Path]:
    return sorted(p.parent for p in (out / "profiles").glob("*/*/meta.json"))


def _jobs(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.glob("*/metrics.json"))


@pytest.mark.slow
def test_fdr_sweep_profiles_once_logs_wandb_and_reports(tmp_path):
    """The issue's sweep: k in {2, 4} x allocation in {inverse, uniform}, debug=fdr, wandb offline."""
    from sgpo.wandb_offline import read_history, read_run_info

    out, sweep = tmp_path / "out", tmp_path / "sweep"
    proc = run_cli("train.py", "-m", "method=sgpo_paper", "profile.num_samples=2,4", "allocation=inverse,uniform",
                   "debug=fdr",
                   "logger=wandb", "logger.wandb.offline=true", f"paths.output_dir={out}", f"hydra.sweep.dir={sweep}")
    # one profiling pass: the largest k of the sweep, reused by the other three jobs
    folders = _profile_folders(out)
    assert [f.name.rsplit("-", 1)[1] for f in folders] == ["k4"], folders
    assert proc.stdout.count("profiling k=4, the largest profile.num_samples of this sweep") == 1
    assert proc.stdout.count("reusing cached profile") == 3

    jobs = _jobs(sweep)
    assert len(jobs) == 4
    flops = {}
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        config = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        k, rule = config["profile"]["num_samples"], config["allocation"]["name"]
        assert metrics["profile/num_samples"] == k and metrics["profile/path"] == str(folders[0])
        assert metrics["train/steps"] == 2 and "test/pass@1" in metrics
        flops.setdefault(k, set()).add(metrics["compute/profile_flops"])

        # wandb: one group per multirun, tags naming what the sweep varies, data media at the start
        (run_file,) = (job / "wandb").glob("offline-run-*/run-*.wandb")
        info = read_run_info(run_file)
        assert info["group"] == "sweep"
        assert {"method:sgpo_paper", f"k:{k}", f"allocation:{rule}"} <= set(info["tags"])
        history = read_history(run_file)
        media = next(row for row in history if "data/p_hat" in row)
        assert media["data/p_hat"]["_type"] == "histogram" and len(media["data/p_hat"]["bins"]) == k + 2
        assert media["data/group_size_mix"]["_type"] == "table-file"
        assert any("compute/total_flops" in row for row in history)
    # each job is charged only for the samples it used; the prompt's forward is charged once per
    # query (prefix sharing), so k=2 costs (P + 2C) / (P + 4C) of k=4: between 1/2 and 1
    assert len(flops[2]) == 1 and len(flops[4]) == 1
    assert 0.5 < next(iter(flops[2])) / next(iter(flops[4])) < 0.75

    report = run_cli("-m", "sgpo.report", str(sweep))
    data = json.loads((sweep / "report.json").read_text())
    assert data["sweep"]["rows"] == ["2", "4"] and data["sweep"]["cols"] == ["inverse", "uniform"]
    assert "## Sampling budget x allocation rule" in report.stdout
    assert (sweep / "sweep_heatmap.png").stat().st_size > 1000


@pytest.mark.slow
def test_parallel_jobs_wait_for_one_profile(tmp_path):
    """Two joblib jobs with the same fingerprint start together: one profiles, the other waits and reuses."""
    out, sweep = tmp_path / "out", tmp_path / "sweep"
    run_cli("train.py", "-m", "hydra/launcher=local_parallel", "num_threads=1", "optim.lr=1e-4,2e-4", "debug=fdr",
            "method=sgpo_profile_prior",  # a method that profiles
            f"paths.output_dir={out}", f"hydra.sweep.dir={sweep}")
    assert len(_profile_folders(out)) == 1
    jobs = _jobs(sweep)
    assert len(jobs) == 2
    logs = [(job / "train.log").read_text() for job in jobs]
    assert sum("reusing cached profile" in text for text in logs) == 1, "exactly one job profiled"


@pytest.mark.slow
def test_optuna_study_runs_real_trials(tmp_path):
    out, sweep = tmp_path / "out", tmp_path / "sweep"
    run_cli("train.py", "hparams_search=sgpo_optuna", "debug=fdr", "hydra.sweeper.n_trials=2",
            "hydra.sweeper.sampler.n_startup_trials=1", f"paths.output_dir={out}", f"hydra.sweep.dir={sweep}")
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == {"optim.lr", "filter.trivial_threshold", "filter.keep_unsolvable"}
    assert 0.0 <= float(results["best_value"]) <= 1.0
    finals = [json.loads((job / "metrics.json").read_text())["test/pass@1"] for job in _jobs(sweep)]
    assert len(finals) == 2 and float(results["best_value"]) == max(finals)
    assert len(_profile_folders(out)) == 1, "the trials share one profile (filter keys are not in the fingerprint)"
