"""The hf engine's prefix-sharing path (each prompt prefilled once for its n samples) against
transformers' generate (``prefix_sharing=False``): the same greedy output, the same sampling
distribution, the same EOS and length handling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sgpo.engines.base import SamplingParams
from sgpo.engines.hf import HFEngine, pick_tokens
from sgpo.tasks.arithmetic import ArithmeticTask


@pytest.fixture(scope="module")
def arithmetic_prompts(tiny_policy):
    _, tokenizer = tiny_policy
    task = ArithmeticTask()
    queries = task.split("train")[:256]
    return task, queries, [tokenizer(task.prompt_text(q)).input_ids for q in queries]


def test_greedy_output_is_identical_to_generate(tiny_policy, arithmetic_prompts):
    model, tokenizer = tiny_policy
    _, _, ids = arithmetic_prompts
    greedy = SamplingParams(0.0, 1.0, 8)
    old = HFEngine(model, tokenizer, prefix_sharing=False).generate(ids, 2, greedy, seed=0)
    new = HFEngine(model, tokenizer, prefix_sharing=True).generate(ids, 2, greedy, seed=0)
    assert new == old, "every completion (ids, text, finish reason) as generate gives it"
    lengths = {c.num_tokens for cs in new for c in cs}
    assert len(lengths) > 2, "rows finish at different steps (finished rows leave the batch)"


def test_sampled_success_rates_agree_with_generate_within_noise(tiny_policy, arithmetic_prompts):
    """Paired per-query test on 256 queries x 8 samples, as the hf-vs-vLLM agreement test. The seeds
    differ: under one seed both paths draw the same numbers until the first row stops, which
    would make the samples agree for a reason other than the distribution."""
    model, tokenizer = tiny_policy
    task, queries, ids = arithmetic_prompts
    rates = {}
    for sharing, seed in ((False, 3), (True, 1003)):
        outs = HFEngine(model, tokenizer, prefix_sharing=sharing).generate(ids, 8, SamplingParams(1.0, 1.0, 8), seed=seed)
        rates[sharing] = np.array([np.mean(r) for r in task.score_batch(queries, [[c.text for c in cs] for cs in outs])])
    diff = rates[True] - rates[False]
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    print(f"old {rates[False].mean():.3f} new {rates[True].mean():.3f} diff {diff.mean():+.4f} se {se:.4f}")
    assert abs(diff.mean()) < 4 * se
    assert np.corrcoef(rates[True], rates[False])[0, 1] > 0.6


def test_stop_length_and_reproducibility_of_the_shared_path(tiny_policy):
    model, tokenizer = tiny_policy
    engine = HFEngine(model, tokenizer, max_batch_sequences=8, prefix_sharing=True)  # several micro-batches
    ids = [tokenizer(t).input_ids for t in ("12+34=", "1+1=", "99999+99999=", "4+0=")]
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=3)
    a = engine.generate(ids, n=4, sampling=params, seed=7)
    assert a == engine.generate(ids, n=4, sampling=params, seed=7) != engine.generate(ids, n=4, sampling=params, seed=8)
    reasons = set()
    for cs in a:
        assert len(cs) == 4
        for c in cs:
            reasons.add(c.finish_reason)
            if c.finish_reason == "stop":
                assert c.token_ids[-1] == tokenizer.eos_token_id and tokenizer.eos_token_id not in c.token_ids[:-1]
                assert 1 <= c.num_tokens <= 3
            else:
                assert c.num_tokens == 3 and tokenizer.eos_token_id not in c.token_ids
            assert c.text == tokenizer.decode(c.token_ids, skip_special_tokens=True)
    assert reasons == {"stop", "length"}, "3 tokens: short sums stop, 6-digit answers are cut"


def test_pick_tokens_draws_from_the_tempered_nucleus():
    """20,000 draws from fixed logits at T = 0.7, top-p 0.8 against the hand-computed distribution."""
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
    tempered = torch.softmax(logits / 0.7, -1)
    # sorted mass before each token: 0, .72.., .88.. -> the nucleus holds the first two tokens
    assert float(tempered[0]) < 0.8 < float(tempered[:2].sum())
    want = torch.zeros(5)
    want[:2] = tempered[:2] / tempered[:2].sum()
    generator = torch.Generator().manual_seed(0)
    draws = pick_tokens(logits.repeat(20_000, 1), SamplingParams(0.7, 0.8, 4), generator)
    freq = torch.bincount(draws, minlength=5).float() / len(draws)
    sd = torch.sqrt(want * (1 - want) / len(draws))
    assert torch.all((freq - want).abs() <= 4 * sd + 1e-9), (freq, want)
    plain = pick_tokens(logits.repeat(20_000, 1), SamplingParams(1.0, 1.0, 4), generator)
    freq = torch.bincount(plain, minlength=5).float() / len(plain)
    assert torch.allclose(freq, torch.softmax(logits, -1), atol=0.015), "T = 1, no nucleus: the softmax itself"
    assert pick_tokens(logits[None], SamplingParams(0.0, 1.0, 4), generator).tolist() == [0], "greedy: argmax"
