"""pack_rollouts and token_logprobs by hand: the loss mask covers exactly the completion tokens."""

from __future__ import annotations

import math

import pytest
import torch
from bigram import BigramLM

from sgpo.rollouts import RolloutBatch, pack_rollouts, token_logprobs


def test_loss_mask_lines_up_with_the_completion_tokens():
    """Log-probs are of next tokens: loss_mask[b, t] = 1 exactly where input_ids[b, t + 1] is a completion token."""
    prompts, completions = [[5, 6], [7], [8, 9, 10]], [[11, 12, 13], [14], [15]]
    batch = pack_rollouts(prompts, completions, pad_id=0, rewards=[1.0, 0.0, 1.0],
                          advantages=torch.tensor([0.5, -0.5, 0.0]), group_index=[0, 0, 1])
    assert batch.input_ids.tolist() == [[5, 6, 11, 12, 13], [7, 14, 0, 0, 0], [8, 9, 10, 15, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]]
    assert batch.loss_mask.tolist() == [[0, 1, 1, 1], [1, 0, 0, 0], [0, 0, 1, 0]]
    targets = batch.input_ids[:, 1:]
    for b, completion in enumerate(completions):
        assert targets[b][batch.loss_mask[b].bool()].tolist() == completion
    assert batch.rewards.tolist() == [1.0, 0.0, 1.0] and batch.group_index.tolist() == [0, 0, 1]
    assert batch.advantages.tolist() == [0.5, -0.5, 0.0] and len(batch) == 3
    picked = batch.select(torch.tensor([2, 0]))
    assert picked.input_ids.tolist() == [[8, 9, 10, 15, 0], [5, 6, 11, 12, 13]]
    assert picked.loss_mask.tolist() == [[0, 0, 1, 0], [0, 1, 1, 1]] and picked.group_index.tolist() == [1, 0]


def test_empty_batch_has_no_rows():
    empty = RolloutBatch.empty()
    assert len(empty) == 0 and empty.loss_mask.shape[0] == 0


def test_token_logprobs_are_next_token_log_probs_by_hand():
    """Bigram table[0] = [0, ln 2, ln 3], table[1] = [ln 4, 0, 0]: log p(1 | 0) = ln(2/6), log p(0 | 1) = ln(4/6);
    at T = 2 the logits halve: log p(1 | 0) = ln(sqrt 2 / (1 + sqrt 2 + sqrt 3))."""
    policy = BigramLM([[0.0, math.log(2), math.log(3)], [math.log(4), 0.0, 0.0], [0.0, 0.0, 0.0]])
    ids = torch.tensor([[0, 1, 0]])
    out = token_logprobs(policy, ids, torch.ones_like(ids))
    assert out.dtype == torch.float32 and out.tolist() == [[pytest.approx(math.log(2 / 6)),
                                                            pytest.approx(math.log(4 / 6))]]
    hot = token_logprobs(policy, ids, torch.ones_like(ids), temperature=2.0)
    r2, r3 = math.sqrt(2), math.sqrt(3)
    assert hot[0, 0].item() == pytest.approx(math.log(r2 / (1 + r2 + r3)), rel=1e-6)
    assert hot[0, 1].item() == pytest.approx(math.log(2 / 4), rel=1e-6)
