"""Does an engine sample the policy's next-token distribution at the temperature it was given?

Draw N first tokens of one prompt at temperature T and compare their counts with N softmax(logits / T)
of the policy: a G-test (likelihood ratio, categories with fewer than 5 expected draws pooled), the
same test against 0.7 T (which the sample must be able to reject, or the check has no power), and
the maximum-likelihood temperature. Shared by tests/test_sampling_temperature.py (hf) and
tests/vllm_temperature_check.py (vLLM, in its own process).
"""

from __future__ import annotations

import torch

PROMPT = "12+"  # the shipped policy's next token here is spread over digits and '+' (entropy 2.7 nats)
SAMPLES = 4000
TEMPERATURES = (1.0, 0.6)


def prompt_logits(policy, tokenizer) -> tuple[list[int], torch.Tensor]:
    """The prompt's token ids and the policy's next-token logits [V] after it (float64)."""
    ids = tokenizer(PROMPT).input_ids
    with torch.no_grad():
        logits = policy(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long)).logits
    return ids, logits[0, -1].double()


def g_test_p_value(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """P-value of the counts [V] under the probabilities [V] (chi-square with categories - 1 degrees of freedom)."""
    expected = counts.sum() * probs
    big = expected >= 5
    observed = torch.cat([counts[big], counts[~big].sum().reshape(1)])
    expected = torch.cat([expected[big], expected[~big].sum().reshape(1)])
    if expected[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    seen = observed > 0
    g = 2.0 * (observed[seen] * torch.log(observed[seen] / expected[seen])).sum()
    return float(torch.special.gammaincc(torch.tensor((len(observed) - 1) / 2.0, dtype=torch.float64), g / 2.0))


def fit(tokens: list[int], logits: torch.Tensor, temperature: float) -> dict[str, float]:
    """p-value at T, p-value at 0.7 T, and the maximum-likelihood temperature of the sampled tokens."""
    counts = torch.bincount(torch.tensor(tokens), minlength=len(logits)).double()
    grid = torch.linspace(0.2, 3.0, 2801, dtype=torch.float64)  # steps of 0.001
    loglik = (counts * torch.log_softmax(logits / grid[:, None], dim=-1)).sum(-1)
    return {"temperature": temperature, "samples": len(tokens),
            "p_value": g_test_p_value(counts, torch.softmax(logits / temperature, -1)),
            "p_value_at_0.7T": g_test_p_value(counts, torch.softmax(logits / (0.7 * temperature), -1)),
            "mle_temperature": float(grid[loglik.argmax()])}


def check(result: dict[str, float]) -> None:
    """The sample fits T, rejects 0.7 T, and its maximum-likelihood temperature is within 10% of T."""
    t = result["temperature"]
    assert result["p_value_at_0.7T"] < 1e-6, f"the check cannot tell 0.7 T from T: {result}"
    assert result["p_value"] > 1e-4, f"the samples do not follow softmax(logits / T): {result}"
    assert abs(result["mle_temperature"] - t) < 0.1 * t, result
