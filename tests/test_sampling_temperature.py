"""The hf engine samples softmax(logits / T) of the policy (tests/sampling_check.py; vLLM: tests/test_vllm.py)."""

import pytest
from sampling_check import SAMPLES, TEMPERATURES, check, fit, prompt_logits

from sgpo.engines.base import SamplingParams
from sgpo.engines.hf import HFEngine


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_hf_engine_samples_the_policy_at_its_temperature(tiny_policy, temperature):
    model, tokenizer = tiny_policy
    ids, logits = prompt_logits(model, tokenizer)
    (completions,) = HFEngine(model, tokenizer).generate([ids], SAMPLES, SamplingParams(temperature, 1.0, 1), seed=0)
    result = fit([c.token_ids[0] for c in completions], logits, temperature)
    print(result)
    check(result)
