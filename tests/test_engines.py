"""The hf engine on the shipped policy, and hf-vs-vllm agreement through the real profile.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import last_line, run_cli, vllm_available

from sgpo.engines.base import SamplingParams
from sgpo.engines.hf import HFEngine
from sgpo.profiling import load_profile


def prompts(tokenizer, texts):
    return [tokenizer(t).input_ids for t in texts]


def test_hf_engine_shapes_stop_and_reproducibility(tiny_policy):
    model, tokenizer = tiny_policy
    engine = HFEngine(model, tokenizer, max_batch_sequences=8)  # forces several micro-batches
    ids = prompts(tokenizer, ["12+34=", "1+1=", "99999+99999="])
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=8)
    a = engine.generate(ids, n=4, sampling=params, seed=7)
    b = engine.generate(ids, n=4, sampling=params, seed=7)
    assert a == b, "same seed, same samples"
    assert [len(cs) for cs in a] == [4, 4, 4]
    for cs in a:
        for c in cs:
            assert 1 <= c.num_tokens <= 8
            if c.finish_reason == "stop":
                assert c.token_ids[-1] == tokenizer.eos_token_id and tokenizer.eos_token_id not in c.token_ids[:-1]
            else:
                assert c.finish_reason == "length" and c.num_tokens == 8
            assert c.text == tokenizer.decode(c.token_ids, skip_special_tokens=True)
    c = engine.generate(ids, n=4, sampling=params, seed=8)
    assert a != c, "another seed, other samples"


def test_hf_engine_greedy_solves_easy_sums_and_truncates(tiny_policy):
    model, tokenizer = tiny_policy
    engine = HFEngine(model, tokenizer)
    out = engine.generate(prompts(tokenizer, ["1+2=", "3+4="]), n=2, sampling=SamplingParams(0.0, 1.0, 8), seed=0)
    assert [c.text for c in out[0]] == ["3", "3"] and out[1][0].text == "7"
    assert all(c.finish_reason == "stop" for cs in out for c in cs)
    cut = engine.generate(prompts(tokenizer, ["12345+54321="]), n=1, sampling=SamplingParams(0.0, 1.0, 2), seed=0)
    assert cut[0][0].finish_reason == "length" and cut[0][0].num_tokens == 2


def test_hf_engine_leaves_global_rng_alone(tiny_policy):
    import torch

    model, tokenizer = tiny_policy
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    HFEngine(model, tokenizer).generate(prompts(tokenizer, ["5+5="]), 2, SamplingParams(), seed=1)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.slow
def test_vllm_matches_hf_success_rates_within_sampling_noise(tmp_path):
    ok, reason = vllm_available()
    if not ok:
        print(f"SKIPPED hf-vs-vllm agreement: {reason}")
        pytest.skip(reason)
    common = ["profile.max_queries=256", f"paths.output_dir={tmp_path}"]
    hf = load_profile(last_line(run_cli("profile.py", "engine=hf", *common).stdout).split("profile: ")[1])
    proc = run_cli("profile.py", "engine=vllm", *common)
    vl = load_profile(last_line(proc.stdout).split("profile: ")[1])
    assert hf.query_ids == vl.query_ids and hf.meta["fingerprint"] != vl.meta["fingerprint"]
    # Paired per-query difference of success rates: its mean must be within 4 standard errors of 0.
    diff = hf.success_rates() - vl.success_rates()
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    print(json.dumps({"hf_mean": float(hf.success_rates().mean()), "vllm_mean": float(vl.success_rates().mean()),
                      "mean_diff": float(diff.mean()), "se": float(se)}))
    assert abs(diff.mean()) < 4 * se + 1e-9
    # and the two engines agree on which queries are hard: strong per-query correlation
    assert np.corrcoef(hf.success_rates(), vl.success_rates())[0, 1] > 0.6
