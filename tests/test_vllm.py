"""vLLM weight sync and training through the vllm engine (skipped with the reason if vllm can't import)."""

import json

import pytest
from conftest import TINY, run_cli, vllm_available

ok, reason = vllm_available()
pytestmark = pytest.mark.skipif(not ok, reason=reason)
if not ok:
    print(f"SKIPPING vLLM tests: {reason}")


def test_vllm_logprobs_match_trained_policy_after_sync():
    proc = run_cli("tests/vllm_sync_check.py", str(TINY))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["max_abs_diff_before_sync"] > 1e-3, "the update must have moved the policy"
    assert result["max_abs_diff_after_sync"] < 1e-4, result


def test_train_py_with_vllm_engine(tmp_path):
    run_dir = tmp_path / "run"
    run_cli("train.py", "engine=vllm", "method=grpo", "profile.max_queries=64", "eval.max_queries=16", "eval.k=2",
            "data.rollouts_per_step=64", "train.max_steps=2", "eval.every_n_steps=0", "checkpoint.every_n_steps=0",
            f"paths.output_dir={tmp_path / 'out'}", f"paths.run_dir={run_dir}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train/steps"] == 2 and metrics["compute/rollout_flops"] > 0
