"""profile.py end to end on the shipped policy: cache files, reuse, fingerprints, kill-and-resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from conftest import REPO, TINY, last_line, run_cli
from hydra import compose, initialize_config_dir

from sgpo.profiling import load_profile
from sgpo.profiling.runner import ProfileJob

SLICE = ["profile.max_queries=96", "profile.chunk_queries=32"]


def folder_of(stdout: str) -> Path:
    line = last_line(stdout)
    assert line.startswith("profile: "), line
    return Path(line.removeprefix("profile: "))


def test_profile_writes_cache_and_reuses_it(tmp_path):
    out = [f"paths.output_dir={tmp_path}"]
    first = run_cli("profile.py", *SLICE, *out)
    folder = folder_of(first.stdout)
    assert folder.parent.parent == tmp_path / "profiles"
    for name in ("profile.parquet", "meta.json", "summary.json", "p_hat_hist.png"):
        assert (folder / name).is_file(), name
    assert not (folder / "parts").exists()
    summary = json.loads((folder / "summary.json").read_text())
    for key in ("num_queries", "num_samples", "frac_trivial", "frac_unsolvable", "frac_mixed", "mean_success",
                "profile_flops", "wall_s"):
        assert key in summary, key
    assert summary["num_queries"] == 96 and summary["num_samples"] == 8 and summary["profile_flops"] > 0
    assert abs(summary["frac_trivial"] + summary["frac_unsolvable"] + summary["frac_mixed"] - 1) < 1e-9
    meta = json.loads((folder / "meta.json").read_text())
    assert set(meta["components"]) >= {"weights", "data", "sampling", "seed"}
    assert "queries" in first.stdout and "mean success" in first.stdout  # the summary table

    again = run_cli("profile.py", *SLICE, *out)
    assert "reusing cached profile" in again.stdout and folder_of(again.stdout) == folder

    half = run_cli("profile.py", *SLICE, *out, "profile.num_samples=4")
    assert "first 4 of its 8 samples" in half.stdout and folder_of(half.stdout) == folder
    profile = load_profile(folder)
    assert profile.prefix(4).meta["profile_flops"] < profile.meta["profile_flops"]
    assert [p for p in folder.parent.iterdir() if p.is_dir()] == [folder], "k'=4 must not profile again"

    other = run_cli("profile.py", *SLICE, *out, "profile.temperature=0.7")
    assert "reusing" not in other.stdout and folder_of(other.stdout) != folder


def compose_profile(overrides):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="profile", overrides=overrides)


def test_fingerprint_changes_with_weights_data_sampling_seed_engine(tmp_path):
    base = ProfileJob(compose_profile(SLICE)).fingerprint
    assert ProfileJob(compose_profile(SLICE)).fingerprint == base
    assert ProfileJob(compose_profile([*SLICE, "profile.num_samples=4"])).fingerprint == base  # k is not in it
    for change in ("profile.temperature=0.9", "profile.top_p=0.9", "profile.max_new_tokens=9", "seed=1",
                   "task.seed=1", "profile.max_queries=95", "engine=vllm"):
        assert ProfileJob(compose_profile([*SLICE, change])).fingerprint != base, change
    # the same architecture with one weight nudged
    from sgpo.models import load_policy

    model, tokenizer = load_policy(str(TINY))
    with torch.no_grad():
        model.model.norm.weight[0] += 1e-3
    model.save_pretrained(tmp_path / "nudged")
    tokenizer.save_pretrained(tmp_path / "nudged")
    assert ProfileJob(compose_profile([*SLICE, f"model.path={tmp_path / 'nudged'}"])).fingerprint != base


def test_sigkill_mid_profile_resumes_without_loss_or_duplicates(tmp_path):
    args = ["profile.max_queries=256", "profile.chunk_queries=8"]
    proc = subprocess.Popen([sys.executable, "profile.py", *args, f"paths.output_dir={tmp_path / 'killed'}"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ))
    deadline = time.time() + 300
    parts: list[Path] = []
    while time.time() < deadline and proc.poll() is None:
        parts = list((tmp_path / "killed").glob("profiles/*/*/parts/part-*.parquet"))
        if len(parts) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "profiling finished before it could be killed: use more queries"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    folder = parts[0].parent.parent
    assert not (folder / "meta.json").exists()
    done_before = len(list((folder / "parts").glob("part-*.parquet")))
    assert 3 <= done_before < 32

    resumed = run_cli("profile.py", *args, f"paths.output_dir={tmp_path / 'killed'}")
    assert f"{done_before} of 32 chunks already done" in resumed.stdout
    assert folder_of(resumed.stdout) == folder
    clean = run_cli("profile.py", *args, f"paths.output_dir={tmp_path / 'clean'}")

    a, b = load_profile(folder), load_profile(folder_of(clean.stdout))
    cfg = compose_profile(args)
    from sgpo.tasks import build_task

    expected_ids = [q.id for q in build_task(cfg.task).split("train")[:256]]
    assert a.query_ids == expected_ids, "every query exactly once, in order"
    np.testing.assert_array_equal(a.outcomes, b.outcomes)
    np.testing.assert_array_equal(a.completion_tokens, b.completion_tokens)
    assert a.meta["fingerprint"] == b.meta["fingerprint"]
    assert a.meta["profile_flops"] == b.meta["profile_flops"]


def test_cprofile_still_works_from_repo_root():
    """profile.py shadows the stdlib module cProfile imports; the shim must keep cProfile working."""
    for script in ("profile.py", "train.py"):
        proc = run_cli("-m", "cProfile", "-s", "cumulative", script, "--help")
        assert "function calls" in proc.stdout and script in proc.stdout
    shim = run_cli("-c", "import profile, cProfile; assert hasattr(profile, 'Profile'); print(profile.__all__)")
    assert "runctx" in shim.stdout
