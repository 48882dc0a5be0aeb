"""vLLM weight sync and training through the vllm engine (skipped with the reason if vllm can't import)."""

import json

import pytest
from conftest import TINY, run_cli, vllm_available
from sampling_check import check

ok, reason = vllm_available()
pytestmark = pytest.mark.skipif(not ok, reason=reason)
if not ok:
    print(f"SKIPPING vLLM tests: {reason}")


def test_vllm_logprobs_match_trained_policy_after_sync():
    proc = run_cli("tests/vllm_sync_check.py", str(TINY))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["max_abs_diff_before_sync"] > 1e-3, "the update must have moved the policy"
    assert result["max_abs_diff_after_sync"] < 1e-4, result


def test_training_with_the_vllm_engine_syncs_its_weights(tmp_path):
    """2 steps of train(cfg) with engine=vllm: the engine that samples (and evaluates) holds the trained
    weights, not the initial ones."""
    proc = run_cli("tests/vllm_train_sync_check.py", str(tmp_path))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # lr 1e-2 moves the tiny policy far in one step: its second step may meet only zero-variance groups
    assert result["steps"] == 2 and result["rollout_flops"] > 0 and result["steps_without_update"] < 2, result
    assert result["max_abs_diff_trained_vs_initial"] > 1e-2, "training must move the policy"
    assert result["max_abs_diff_engine_vs_trained"] < 1e-4, result


def test_vllm_samples_the_policy_at_its_temperature():
    """vLLM's first tokens at T = 1 and 0.6 follow softmax(logits / T) and reject 0.7 T (tests/sampling_check.py)."""
    proc = run_cli("tests/vllm_temperature_check.py", str(TINY))
    for result in json.loads(proc.stdout.strip().splitlines()[-1]):
        print(result)
        check(result)
