"""Several processes (gloo on the CPU) make the update one process makes, and plan the same steps.

* 2 processes, each with its share of a fixed rollout batch, end with the gradient one process
  computes on the whole batch (every loss; a rank with no trainable rows; a rank with no rows),
  and both take the optimiser step: each rank's weights move by the one-process step.
* ``train.py trainer=ddp`` with 2 processes and the p-hat refresh on crosses a curriculum cycle
  without a hang, both ranks hold the same plan and the same trained weights, and the weights
  moved away from the initial policy; so does the adaptive sGPO, with and without updates that
  wait for mixed groups.
"""

from __future__ import annotations

import json
import re
import socket

import pytest
import torch
import torch.multiprocessing as mp
from conftest import TINY, run_cli
from update_cases import DDP_LR, LOSS_PARAMS, SPLITS, ddp_worker, one_process_gradient

FAST = ["profile.max_queries=128", "profile.chunk_queries=64", "eval.max_queries=32", "eval.k=2",
        "data.rollouts_per_step=64", "train.max_steps=3", "eval.every_n_steps=0", "checkpoint.every_n_steps=0",
        "num_threads=1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_compute_the_one_process_gradient(tmp_path):
    out = tmp_path / "grads.pt"
    mp.spawn(ddp_worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.rank{r}") for r in range(2)]
    for loss in LOSS_PARAMS:
        every_row = one_process_gradient(loss, skip=False)
        for split in SPLITS:
            (grad, updates, moved), (_, updates_1, moved_1) = ranks[0][(loss, split)], ranks[1][(loss, split)]
            diff = float((grad - every_row).norm() / every_row.norm())
            # SGD: each rank's weights moved by -lr x the one-process gradient (the rank with nothing to
            # train steps too, after its null pass), and the replicas stay identical
            step = -DDP_LR * every_row.double()
            step_diff = float((moved - step).norm() / step.norm())
            print(f"{loss} {split}: relative difference to one process: gradient {diff:.2e}, step {step_diff:.2e}")
            assert updates == updates_1 == 1 and diff <= 1e-5, (loss, split, diff)
            assert torch.equal(moved, moved_1), (loss, split, "the replicas' weights differ")
            assert step_diff <= 1e-4, (loss, split, step_diff)


@pytest.mark.slow
# sgpo_every_step: the posterior must stay equal on both ranks; sgpo: so must the decision to wait
# for mixed groups (counted job-wide; 6 here, not 16, so that 8 steps hold waits and updates)
@pytest.mark.parametrize("method", ["sgpo_refresh", "sgpo_every_step", "sgpo"])
def test_ddp_run_crosses_a_refresh_cycle_with_equal_plans_and_weights(tmp_path, method):
    ddp_dir = tmp_path / "ddp"
    # 64 queries (profiled for sgpo_refresh; sgpo needs none): one curriculum cycle (or walk over
    # every query) is a few steps of 64 rollouts, so 8 steps cross it
    extra = ["algo.min_mixed_groups=6"] if method == "sgpo" else []
    proc = run_cli("train.py", *FAST, "profile.max_queries=64", "train.max_steps=8", f"method={method}", *extra,
                   "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true",
                   f"paths.output_dir={tmp_path / 'out'}", f"hydra.run.dir={ddp_dir}", timeout=480)
    log = (ddp_dir / "train.log").read_text() + proc.stdout + proc.stderr
    found = re.findall(r"rank (\d) of 2: final weights sha256 ([0-9a-f]{64}), sampler plan sha256 ([0-9a-f]{64}) "
                       r"\(cycle (\d+)\)", log)
    ranks = {rank: (weights, plan, int(cycle)) for rank, weights, plan, cycle in found}
    assert set(ranks) == {"0", "1"}, log[-3000:]
    assert ranks["0"] == ranks["1"], "replicas diverged or planned different steps"
    assert ranks["0"][2] >= 1, "the run must cross a cycle boundary (where the refresh re-plans)"
    from sgpo.models import load_policy, weights_fingerprint

    assert ranks["0"][0] != weights_fingerprint(load_policy(str(TINY))[0]), "training must move the weights"
    metrics = json.loads((ddp_dir / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["train/steps"] == 8
    # the gathering run waited on some steps (both ranks alike: the weights above agree) and updated on others
    assert (0 < metrics["train/deferred_steps_total"] < 8) == (method == "sgpo"), metrics["train/deferred_steps_total"]
    assert metrics["compute/train_flops"] > 0 and (ddp_dir / "policy" / "config.json").is_file()


def test_dapo_with_several_processes_is_refused_clearly(tmp_path):
    """Refused at start from the trainer config, before any profiling or process start."""
    proc = run_cli("train.py", *FAST, "method=dapo", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                   "trainer.precision=32-true", f"paths.output_dir={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'r'}",
                   check=False, timeout=300)
    assert proc.returncode != 0
    assert "algo.dynamic_sampling (DAPO)" in proc.stderr and "trainer.devices x trainer.num_nodes = 2" in proc.stderr
    assert not (tmp_path / "out" / "profiles").exists(), "refused before profiling"


def test_planned_processes_reads_devices_and_nodes():
    from omegaconf import OmegaConf

    from sgpo.training import planned_processes

    cases = {1: 2, 2: 4, "2": 4, (0, 1): 4, (3,): 2, "auto": None, -1: None}
    for devices, expected in cases.items():
        devices = list(devices) if isinstance(devices, tuple) else devices
        assert planned_processes(OmegaConf.create({"devices": devices, "num_nodes": 2})) == expected, devices
    assert planned_processes(OmegaConf.create({})) == 1  # Lightning's defaults: one device, one node
