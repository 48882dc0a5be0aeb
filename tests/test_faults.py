"""Faults: kills at chosen points, damaged caches and checkpoints, a full disk, and
degenerate batches. Nothing that was written before a fault is ever lost or silently trusted."""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, last_line, run_cli

from sgpo.io import atomic_write_json, file_sha256

PROFILE = ["profile.max_queries=128", "profile.chunk_queries=16"]  # 8 chunks


def profile_folder(stdout: str) -> Path:
    line = last_line(stdout)
    assert line.startswith("profile: "), line
    return Path(line.removeprefix("profile: "))


def crash_run(*args: str, point: str) -> subprocess.CompletedProcess:
    """Run ``python <args>`` with a crash point armed; it must die by SIGKILL there."""
    env = dict(os.environ, SGPO_CRASH_AT=point)
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr[-3000:])
    return proc


def only_folder(out: Path) -> Path:
    (meta,) = list(out.glob("profiles/*/*/meta.json"))
    return meta.parent


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted profile to compare every recovered one with."""
    out = tmp_path_factory.mktemp("reference")
    return profile_folder(run_cli("profile.py", *PROFILE, f"paths.output_dir={out}").stdout)


def assert_same_cache(folder: Path, reference: Path) -> None:
    assert file_sha256(folder / "profile.parquet") == file_sha256(reference / "profile.parquet"), "cache differs"
    a, b = (json.loads((f / "meta.json").read_text()) for f in (folder, reference))
    for key in ("fingerprint", "num_queries", "num_samples", "profile_flops", "sha256"):
        assert a[key] == b[key], key


@pytest.mark.slow
def test_profile_killed_at_five_chosen_points_resumes_to_the_identical_cache(tmp_path, reference):
    """One profile killed again and again (after chunks 0, 3 and 7, between the Parquet file and
    meta.json, and before the part files are cleaned up), resumed after every kill."""
    out = f"paths.output_dir={tmp_path}"
    points = ["profile:chunk:0", "profile:chunk:3", "profile:chunk:7", "profile:before_meta", "profile:before_cleanup"]
    for point in points:
        crash_run("profile.py", *PROFILE, out, point=point)
        folder = next(tmp_path.glob("profiles/*/*"))
        if point != "profile:before_cleanup":
            assert not (folder / "meta.json").exists(), f"{point}: an unfinished profile must not look complete"
    resumed = run_cli("profile.py", *PROFILE, out)
    folder = profile_folder(resumed.stdout)
    assert_same_cache(folder, reference)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate_parquet", "flip_parquet_byte", "garbage_meta"])
def test_damaged_cache_is_set_aside_and_rebuilt(tmp_path, reference, damage):
    shutil.copytree(reference.parent.parent, tmp_path / "profiles")
    folder = only_folder(tmp_path)
    target = folder / ("meta.json" if damage == "garbage_meta" else "profile.parquet")
    data = bytearray(target.read_bytes())
    if damage == "truncate_parquet":
        data = data[: len(data) // 2]
    elif damage == "flip_parquet_byte":
        data[len(data) // 2] ^= 0xFF
    else:
        data = bytearray(b"{not json")
    target.write_bytes(bytes(data))

    proc = run_cli("profile.py", *PROFILE, f"paths.output_dir={tmp_path}")
    assert "failed its check" in proc.stdout + proc.stderr
    rebuilt = profile_folder(proc.stdout)
    assert_same_cache(rebuilt, reference)
    (aside,) = list(folder.parent.glob(f"{folder.name}.corrupt-*"))
    assert (aside / target.name).read_bytes() == bytes(data), "the damaged files are kept, not deleted"


@pytest.mark.slow
def test_unreadable_chunk_file_is_sampled_again(tmp_path, reference):
    out = f"paths.output_dir={tmp_path}"
    crash_run("profile.py", *PROFILE, out, point="profile:chunk:3")
    part = next(tmp_path.glob("profiles/*/*/parts/part-00001.parquet"))
    part.write_bytes(b"garbage")
    proc = run_cli("profile.py", *PROFILE, out)
    assert "is unreadable" in proc.stdout + proc.stderr
    assert_same_cache(profile_folder(proc.stdout), reference)


def test_full_disk_never_damages_the_file_already_there(tmp_path, monkeypatch):
    """A write that fails part-way (ENOSPC) leaves the previous file intact and no temporary behind."""
    from sgpo.io import atomic_write

    path = tmp_path / "meta.json"
    atomic_write_json(path, {"v": 1})

    def fill_disk(tmp: Path) -> None:
        tmp.write_text('{"v": 2, "half')
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, fill_disk)
    assert json.loads(path.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]


def test_full_disk_while_saving_a_profile_keeps_the_old_one(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sgpo.profiling import store

    table = pa.table({"x": [1, 2, 3]})
    store.save_profile(tmp_path, table, {"fingerprint": "f"})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(OSError):
        store.save_profile(tmp_path, pa.table({"x": [4]}), {"fingerprint": "g"})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_full_disk_while_checkpointing_keeps_the_last_checkpoint(tmp_path):
    from sgpo.callbacks import checksum_path, save_checkpoint, verify_checkpoint

    class Disk:  # stands in for the disk under Trainer.save_checkpoint: first write works, the second fills it
        full = False

        def save_checkpoint(self, path, weights_only=None):
            Path(path).write_bytes(b"half" if self.full else b"a good checkpoint")
            if self.full:
                raise OSError(errno.ENOSPC, "No space left on device")

    disk, ckpt = Disk(), tmp_path / "last.ckpt"
    save_checkpoint(disk, ckpt)
    disk.full = True
    with pytest.raises(OSError):
        save_checkpoint(disk, ckpt)
    assert ckpt.read_bytes() == b"a good checkpoint"
    verify_checkpoint(ckpt)  # still matches its checksum
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", checksum_path(ckpt).name]


TRAIN = ["profile.max_queries=128", "profile.chunk_queries=64", "eval.max_queries=32", "eval.k=2",
         "data.rollouts_per_step=64", "train.max_steps=4", "eval.every_n_steps=0", "checkpoint.every_n_steps=2"]
# GRPO here: its static data path is resumed after a SIGKILL; sgpo's posterior and walk are resumed
# (step by step) in test_train_e2e.py::test_checkpoint_resume_matches_uninterrupted_run


@pytest.mark.slow
def test_training_killed_after_a_checkpoint_resumes_and_matches(tmp_path):
    killed, full = tmp_path / "killed", tmp_path / "full"
    crash_run("train.py", *TRAIN, "method=grpo", f"paths.output_dir={tmp_path / 'out'}", f"paths.run_dir={killed}",
              point="train:checkpoint:2")
    ckpt = killed / "checkpoints" / "last.ckpt"
    assert ckpt.is_file() and (killed / "checkpoints" / "last.ckpt.sha256").is_file()
    assert not (killed / "metrics.json").exists()
    run_cli("train.py", *TRAIN, "method=grpo", f"paths.output_dir={tmp_path / 'out'}", f"paths.run_dir={killed}",
            f"ckpt_path={ckpt}")
    run_cli("train.py", *TRAIN, "method=grpo", f"paths.output_dir={tmp_path / 'out'}", f"paths.run_dir={full}")
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (killed, full))
    assert a["train/steps"] == b["train/steps"] == 4
    for key in ("compute/total_flops", "compute/rollout_flops", "compute/train_flops", "test/pass@1"):
        assert a[key] == pytest.approx(b[key], rel=1e-9), key


@pytest.mark.slow
def test_damaged_checkpoint_is_refused_with_a_clear_message(tmp_path):
    run_dir = tmp_path / "run"
    run_cli("train.py", *TRAIN, "train.max_steps=2", f"paths.output_dir={tmp_path / 'out'}", f"paths.run_dir={run_dir}")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    data = bytearray(ckpt.read_bytes())
    ckpt.write_bytes(bytes(data[: len(data) - 100]))  # truncated
    proc = run_cli("train.py", *TRAIN, f"paths.output_dir={tmp_path / 'out'}", f"paths.run_dir={tmp_path / 'again'}",
                   f"ckpt_path={ckpt}", check=False)
    assert proc.returncode != 0
    assert f"ckpt_path={ckpt}: checksum does not match last.ckpt.sha256 (truncated or modified)" in proc.stderr
    missing = run_cli("train.py", *TRAIN, f"paths.output_dir={tmp_path / 'out'}", f"ckpt_path={tmp_path / 'nope.ckpt'}",
                      check=False)
    assert "no such checkpoint file" in missing.stderr


@pytest.mark.slow
def test_all_zero_advantage_and_truncated_batches_go_through_and_are_counted(tmp_path):
    """One-token completions of 4-5 digit sums: every completion truncated, every reward 0, every
    group zero-advantage. The run finishes, makes no update (method=grpo trains on every row: zero
    gradients), charges every FLOP of it as wasted, and its logs count all of it."""
    run_dir = tmp_path / "run"
    run_cli("train.py", "method=grpo", "task.min_digits=4", "rollout.max_new_tokens=1", "train.max_steps=2",
            "data.rollouts_per_step=32", "profile.max_queries=64", "eval.max_queries=16", "eval.k=2",
            "checkpoint.every_n_steps=0", f"paths.output_dir={tmp_path / 'out'}", f"paths.run_dir={run_dir}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train/steps"] == 2 and metrics["compute/train_flops"] > 0
    assert metrics["compute/wasted_flops"] == pytest.approx(metrics["compute/rollout_flops"] + metrics["compute/train_flops"])
    rows = [r for r in csv.DictReader((run_dir / "csv" / "metrics.csv").open()) if r.get("train/steps")]
    last = rows[-1]
    assert float(last["train/frac_zero_adv_groups"]) == 1.0 and float(last["train/frac_truncated"]) == 1.0
    assert float(last["train/truncated_total"]) == 64 and float(last["train/zero_adv_groups_total"]) == 8
    assert float(last["train/steps_without_update"]) == 2


def test_empty_and_eos_only_completions_give_finite_losses():
    from sgpo.algos.advantages import group_advantages
    from sgpo.algos.losses import LOSSES
    from sgpo.rollouts import pack_rollouts

    prompts = [[5, 6, 7]] * 4
    completions = [[], [2], [], [9, 2]]  # empty, EOS only, empty, one token + EOS
    rewards = [0.0, 0.0, 0.0, 1.0]
    groups = torch.tensor([0, 0, 1, 1])
    adv, metrics = group_advantages(torch.tensor(rewards), groups)
    batch = pack_rollouts(prompts, completions, 0, rewards, adv, groups.tolist())
    logprobs = torch.randn(batch.loss_mask.shape, requires_grad=True)
    for name in ("grpo", "dr_grpo", "dapo"):
        extra = {"eps": 0.2, "beta": 0.0, "max_completion_tokens": 8} if name == "dr_grpo" else \
            {"eps_low": 0.2, "eps_high": 0.28, "beta": 0.0} if name == "dapo" else {"eps": 0.2, "beta": 0.0}
        loss, _ = LOSSES.get(name)(logprobs, logprobs.detach(), batch.advantages, batch.loss_mask, **extra)
        assert torch.isfinite(loss), name
        loss.backward()
        assert torch.isfinite(logprobs.grad).all()
        logprobs.grad = None
    assert metrics["num_degenerate_groups"] == 1
    assert batch.loss_mask[0].sum() == 0 and batch.loss_mask[1].sum() == 1
