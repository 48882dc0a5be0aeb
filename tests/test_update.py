"""PolicyUpdater: skipping zero-advantage rows is a pure compute saving (the same gradient and the
same weights as training on every row), for every loss and for the PPO path."""

from __future__ import annotations

import pytest
import torch
from update_cases import GROUPS, LOSS_PARAMS, batch_of, flat_grad, load_tiny, one_process_gradient, updater_for


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("loss", sorted(LOSS_PARAMS))
def test_skipping_zero_advantage_rows_gives_the_gradient_of_every_row(loss):
    every_row = one_process_gradient(loss, skip=False)
    skipped = one_process_gradient(loss, skip=True)
    assert every_row.norm() > 0
    diff = rel_diff(skipped, every_row)
    print(f"{loss}: relative difference skip vs every row {diff:.2e}")
    assert diff <= 1e-6


def test_skipping_really_skips_rows_and_charges_less():
    policy, tokenizer = load_tiny()
    batch, lengths = batch_of(tokenizer, list(range(len(GROUPS))), True)
    rows = {}
    for skip in (False, True):
        updater = updater_for(policy, policy, "grpo", skip)
        rows[skip] = (updater.update(batch, lengths, seed=0).trained_rows, updater.ledger)
    zero_rows = sum(len(rs) for _, rs in GROUPS if len(set(rs)) == 1)
    assert rows[False][0] == len(batch) and rows[True][0] == len(batch) - zero_rows
    every, skipped = rows[False][1], rows[True][1]
    every.settle()
    skipped.settle()
    assert skipped.train < every.train
    # without skipping, the zero-advantage rows' training is charged as wasted; with it, nothing is
    assert every.wasted == pytest.approx(every.train - skipped.train, rel=1e-9) and skipped.wasted == 0


@pytest.mark.parametrize("loss", ["grpo", "dapo"])
def test_ppo_path_with_minibatches_ends_at_the_same_weights_with_and_without_skipping(loss):
    """num_iterations=2 (ratio clipping), minibatches=3, AdamW: the whole update, step for step.

    In float64, so what is compared is the arithmetic, not rounding: in float32 the two paths sum in
    another order, and Adam's per-coordinate normalisation blows the rounding noise of gradient
    coordinates near zero up to ~1e-4 of lr (measured: max 5.7e-5 after these 6 steps at lr 1e-3)."""
    finals = []
    for skip in (False, True):
        policy, tokenizer = load_tiny()
        policy.double()
        batch, lengths = batch_of(tokenizer, list(range(len(GROUPS))), LOSS_PARAMS[loss][1])
        optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
        result = updater_for(policy, policy, loss, skip, optimizer=optimizer, iterations=2, minibatches=3,
                             grad_clip=1.0).update(batch, lengths, seed=5)
        assert result.updates == 6 and result.skipped == 0
        finals.append(torch.cat([p.detach().flatten() for p in policy.parameters()]))
    initial = torch.cat([p.detach().flatten() for p in load_tiny()[0].double().parameters()])
    assert (finals[0] - initial).abs().max() > 1e-4, "the update must move the weights"
    assert torch.allclose(finals[1], finals[0], rtol=1e-12, atol=1e-14), float((finals[1] - finals[0]).abs().max())


def test_a_minibatch_of_zero_advantage_rows_still_steps_the_optimiser():
    """Training on zero-advantage rows gives a zero gradient but AdamW still moves (momentum): the
    skipping path must take that step too, without any forward pass."""
    weights = []
    for skip in (False, True):
        policy, tokenizer = load_tiny()
        optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
        mixed, lengths = batch_of(tokenizer, [0], True)
        updater = updater_for(policy, policy, "grpo", skip, optimizer=optimizer, grad_clip=1.0)
        updater.update(mixed, lengths, seed=0)
        zero, zero_lengths = batch_of(tokenizer, [1, 3], True)
        result = updater.update(zero, zero_lengths, seed=0)
        assert result.updates == 1 and result.trained_rows == (0 if skip else len(zero))
        assert flat_grad(policy).abs().max() == 0
        weights.append(torch.cat([p.detach().flatten() for p in policy.parameters()]))
    assert torch.allclose(weights[0], weights[1], rtol=1e-6, atol=1e-8)
