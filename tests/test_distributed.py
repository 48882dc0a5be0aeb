"""trainer=ddp with 2 CPU processes on gloo: ranks share each step's groups, average gradients,
sum FLOPs, and end with identical weights; rank 0 alone writes the run's files."""

from __future__ import annotations

import json
import re

import pytest
from conftest import run_cli

FAST = ["profile.max_queries=128", "profile.chunk_queries=64", "eval.max_queries=32", "eval.k=2",
        "data.rollouts_per_step=64", "train.max_steps=3", "eval.every_n_steps=0", "checkpoint.every_n_steps=0",
        "num_threads=1"]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one_process_compute(tmp_path):
    ddp_dir, one_dir = tmp_path / "ddp", tmp_path / "one"
    proc = run_cli("train.py", *FAST, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                   "trainer.precision=32-true", f"paths.output_dir={tmp_path / 'out'}", f"hydra.run.dir={ddp_dir}")
    run_cli("train.py", *FAST, f"paths.output_dir={tmp_path / 'out'}", f"hydra.run.dir={one_dir}")
    log = (ddp_dir / "train.log").read_text() + proc.stdout + proc.stderr
    ranks = dict(re.findall(r"rank (\d) of 2: final weights sha256 ([0-9a-f]{64})", log))
    assert set(ranks) == {"0", "1"}, log[-3000:]
    assert ranks["0"] == ranks["1"], "replicas diverged"
    ddp, one = (json.loads((d / "metrics.json").read_text()) for d in (ddp_dir, one_dir))
    assert ddp["world_size"] == 2 and one["world_size"] == 1
    assert ddp["train/steps"] == one["train/steps"] == 3
    # the ledger sums every rank's rollouts: the same steps cost about the same job-wide compute
    assert ddp["compute/rollout_flops"] == pytest.approx(one["compute/rollout_flops"], rel=0.15)
    assert ddp["compute/train_flops"] > 0
    assert (ddp_dir / "policy" / "config.json").is_file()


def test_dapo_with_several_processes_is_refused_clearly(tmp_path):
    proc = run_cli("train.py", *FAST, "method=dapo", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                   "trainer.precision=32-true", f"paths.output_dir={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'r'}",
                   check=False, timeout=300)
    assert proc.returncode != 0
    assert "algo.dynamic_sampling (DAPO)" in proc.stdout + proc.stderr
