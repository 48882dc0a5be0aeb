"""Run by tests/test_vllm.py in its own process (vLLM wants a __main__ guard).

Samples the first token of one prompt many times with the vllm engine at each temperature of
tests/sampling_check.py and prints, as JSON lines, how well the samples fit the policy's
softmax(logits / T) (tests/sampling_check.py says how).
"""

import json
import sys

if __name__ == "__main__":
    from sampling_check import SAMPLES, TEMPERATURES, fit, prompt_logits

    from sgpo.engines.base import SamplingParams
    from sgpo.engines.vllm import VLLMEngine
    from sgpo.models import load_policy

    path = sys.argv[1]
    policy, tokenizer = load_policy(path)
    ids, logits = prompt_logits(policy, tokenizer)
    engine = VLLMEngine(path)
    results = []
    for temperature in TEMPERATURES:
        (completions,) = engine.generate([ids], SAMPLES, SamplingParams(temperature, 1.0, 1), seed=0)
        results.append(fit([c.token_ids[0] for c in completions], logits, temperature))
    print(json.dumps(results))
