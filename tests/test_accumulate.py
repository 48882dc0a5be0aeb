"""Mixed groups gathered over steps (algo.min_mixed_groups): which rows wait, how they are packed,
and that one update on the gathered rows is the update on those groups packed at once."""

from __future__ import annotations

import pytest
import torch
from update_cases import LOSS_PARAMS, batch_of, flat_grad, load_tiny, updater_for

from sgpo.algos.accumulate import PendingGroups, concat_batches, count_groups, mixed_group_rows
from sgpo.rollouts import RolloutBatch, pack_rollouts


def small_batch(widths: list[tuple[int, int]], advantages: list[float], groups: list[int], pad: int = 7) -> RolloutBatch:
    """Rows of (prompt length, completion length) with token ids 1, 2, 3, ... (never the pad)."""
    prompts = [list(range(1, p + 1)) for p, _ in widths]
    completions = [list(range(50, 50 + c)) for _, c in widths]
    return pack_rollouts(prompts, completions, pad, [a > 0 for a in advantages], torch.tensor(advantages), groups)


def test_mixed_group_rows_keeps_every_row_of_a_group_with_any_nonzero_advantage():
    # group 0 mixed (one row exactly at its mean: advantage 0, still kept), 1 degenerate, 2 mixed
    batch = small_batch([(2, 1)] * 7, [0.5, 0.0, -0.5, 0.0, 0.0, 1.0, -1.0], [0, 0, 0, 1, 1, 2, 2])
    assert mixed_group_rows(batch).tolist() == [True, True, True, False, False, True, True]
    assert mixed_group_rows(RolloutBatch.empty()).tolist() == []
    assert count_groups(batch) == 3


def test_concat_batches_pads_to_the_widest_and_keeps_groups_apart():
    a = small_batch([(2, 1), (2, 2)], [1.0, -1.0], [0, 0])           # width 4
    b = small_batch([(3, 3), (1, 1)], [0.5, -0.5], [1, 1], pad=7)    # width 6, its group index 1
    out = concat_batches([a, RolloutBatch.empty(), b], pad_id=7)
    assert out.input_ids.shape == (4, 6) and out.loss_mask.shape == (4, 5)
    assert out.input_ids[0].tolist() == [1, 2, 50, 7, 7, 7] and out.attention_mask[0].tolist() == [1, 1, 1, 0, 0, 0]
    assert out.loss_mask[1].tolist() == [0, 1, 1, 0, 0]  # predicts the 2 completion tokens only
    assert out.group_index.tolist() == [0, 0, 2, 2]  # b's groups shifted past a's
    assert out.advantages.tolist() == [1.0, -1.0, 0.5, -0.5]
    assert len(concat_batches([], pad_id=0)) == 0


def test_pending_groups_wait_and_come_back_whole():
    pending = PendingGroups(pad_id=7)
    step1 = small_batch([(2, 1), (2, 1), (2, 2), (2, 2)], [1.0, -1.0, 0.0, 0.0], [0, 0, 1, 1])  # 1 mixed, 1 not
    step2 = small_batch([(1, 1), (1, 1)], [0.0, 0.0], [0, 0])  # degenerate only: nothing waits
    step3 = small_batch([(3, 2), (3, 1)], [0.75, -0.75], [0, 0])
    pending.add(step1, [3, 3, 4, 4])
    pending.add(step2, [2, 2])
    assert pending.groups == 1
    pending.add(step3, [5, 4])
    assert pending.groups == 2
    saved = pending.state_dict()
    batch, lengths = pending.take()
    assert lengths == [3, 3, 5, 4] and batch.advantages.tolist() == [1.0, -1.0, 0.75, -0.75]
    assert count_groups(batch) == 2
    assert pending.groups == 0 and len(pending.take()[0]) == 0  # emptied
    restored = PendingGroups(pad_id=7)
    restored.load_state_dict(saved)
    again, again_lengths = restored.take()
    assert again_lengths == lengths and torch.equal(again.input_ids, batch.input_ids)


@pytest.mark.parametrize("loss", ["grpo", "dr_grpo", "dapo"])
def test_one_update_on_gathered_groups_is_the_update_on_those_groups_packed_at_once(loss):
    """Two steps' batches (mixed groups 0, 2 | 4 among degenerate 1 | 3, 5; different pad widths)
    gathered, then one update: the gradient of one batch of groups 0, 2, 4."""
    policy, tokenizer = load_tiny()
    normalize = LOSS_PARAMS[loss][1]  # the loss's advantage setting
    pending = PendingGroups(tokenizer.pad_token_id)
    for groups in ([0, 1, 2], [3, 4, 5]):
        pending.add(*batch_of(tokenizer, groups, normalize))
    assert pending.groups == 3
    gathered, lengths = pending.take()
    updater_for(policy, policy, loss, skip=True).update(gathered, lengths, seed=0)
    got = flat_grad(policy).clone()
    policy.zero_grad(set_to_none=True)
    updater_for(policy, policy, loss, skip=True).update(*batch_of(tokenizer, [0, 2, 4], normalize), seed=0)
    want = flat_grad(policy)
    assert want.abs().sum() > 0
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-7)
