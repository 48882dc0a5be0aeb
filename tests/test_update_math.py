"""PolicyUpdater on a bigram policy (tests/bigram.py) against gradients and weights worked out by hand.

Every number below follows from d log pi(b | a) / d table[a] = e_b - softmax(table[a]) and the
loss's normalisation; they pin what the tiny-policy tests (tests/test_update.py) only compare
between two code paths: the on-policy step of each loss, PPO ratio clipping with two iterations,
minibatches, the KL term with a reference, a second rank's counts and its null pass, gradient
clipping, the non-finite skips, the zero-gradient step, and the FLOPs charged for each pass.
"""

from __future__ import annotations

import logging
import math

import pytest
import torch
from bigram import BigramLM, StrictBigram, V, onehot, rows_batch, uniform_score

from sgpo.algos.losses import LOSSES
from sgpo.algos.update import PolicyUpdater, UpdateResult, sum_in_one_process
from sgpo.flops import FlopsLedger, ModelShape, sequence_forward_flops, sequence_train_flops
from sgpo.rollouts import RolloutBatch

SHAPE = ModelShape(n_layer=1, d_model=4, n_heads=1, n_kv_heads=1, head_dim=4, d_ff=8, vocab_size=V)
PARAMS = {"grpo": {"eps": 0.2}, "dapo": {"eps_low": 0.2, "eps_high": 0.28},
          "dr_grpo": {"eps": 0.2, "max_completion_tokens": 4}}


def make(policy, loss="grpo", *, lr=1.0, optimizer=None, beta=0.0, reference=None, skip=True, ledger=None,
         **kwargs) -> PolicyUpdater:
    kwargs = {"iterations": 1, "minibatches": 1, "grad_clip": 1e9, "temperature": 1.0, **kwargs}
    return PolicyUpdater(policy, optimizer or torch.optim.SGD(policy.parameters(), lr=lr), LOSSES.get(loss),
                         {**PARAMS[loss], "beta": beta}, skip_zero_adv=skip, ledger=ledger or FlopsLedger(0.0),
                         shape=SHAPE, reference=reference, **kwargs)


def settled(updater: PolicyUpdater) -> FlopsLedger:
    updater.ledger.settle()
    return updater.ledger


# Row 0: prompt [0], completion [1, 2] (tokens 0->1 and 1->2), A = +1; row 1: prompt [0], completion [2], A = -1/2.
TWO_ROWS = ([([0], [1, 2]), ([0], [2])], [1.0, -0.5])
# Per-token weight c of each loss on TWO_ROWS (B = 2 rows, T_b tokens, 3 tokens in all, M = 4):
# grpo 1 / (T_b B), dapo 1 / 3, dr_grpo 1 / (B M).
TOKEN_WEIGHTS = {"grpo": (1 / 4, 1 / 2), "dapo": (1 / 3, 1 / 3), "dr_grpo": (1 / 8, 1 / 8)}


@pytest.mark.parametrize("loss", sorted(PARAMS))
def test_on_policy_step_of_each_loss_is_the_hand_gradient(loss):
    """ratio = 1: each token adds -c A (e_b - 1/3) to the gradient of table[a]; SGD lr 1 steps by it."""
    policy = BigramLM()
    batch, lengths = rows_batch(*TWO_ROWS)
    result = make(policy, loss).update(batch, lengths, seed=0)
    c0, c1 = TOKEN_WEIGHTS[loss]
    expected = torch.zeros(V, V)
    expected[0] += -c0 * 1.0 * uniform_score(1)   # row 0, token 0 -> 1
    expected[1] += -c0 * 1.0 * uniform_score(2)   # row 0, token 1 -> 2
    expected[0] += -c1 * -0.5 * uniform_score(2)  # row 1, token 0 -> 2
    assert torch.allclose(policy.table.grad, expected, atol=1e-7), policy.table.grad
    assert torch.allclose(policy.table.detach(), -expected, atol=1e-7), "SGD lr 1: table = -gradient"
    assert (result.updates, result.skipped, result.trained_rows) == (1, 0, 2)
    # the loss at ratio 1 is -sum c A over tokens
    assert result.metrics["actor/loss"] == pytest.approx(-(2 * c0 * 1.0 + c1 * -0.5), abs=1e-7)
    assert result.metrics["actor/grad_norm"] == pytest.approx(float(expected.norm()), rel=1e-6)
    assert result.metrics["actor/clip_frac"] == 0.0 and result.metrics["actor/ratio_mean"] == pytest.approx(1.0)


def test_grpo_by_hand():
    """The grpo case of the test above, written out: table[0] = [0, -1/4, 1/4], table[1] = [1/12, 1/12, -1/6]."""
    policy = BigramLM()
    make(policy, "grpo").update(*rows_batch(*TWO_ROWS), seed=0)
    assert policy.table.grad.tolist() == [pytest.approx([0, -1 / 4, 1 / 4], abs=1e-7),
                                          pytest.approx([1 / 12, 1 / 12, -1 / 6], abs=1e-7), [0, 0, 0]]


# Two rows from the same context: 0 -> 1 with A = +1 and 0 -> 2 with A = -1 (one token each).
PAIR = ([([0], [1]), ([0], [2])], [1.0, -1.0])


def test_ppo_two_iterations_grpo_clips_both_rows_as_computed_by_hand():
    """Iteration 1 (ratio 1): gradient of table[0] = -(1/2)((e1 - p) - (e2 - p)) = [0, -1/2, 1/2]; lr 2
    moves table[0] to [0, 1, -1]. Iteration 2, against the log-probs from before iteration 1 (1/3 each):
    rho_1 = 3e/(1+e+1/e) = 2.00 > 1.2 with A > 0 and rho_2 = 3/e/(1+e+1/e) = 0.27 < 0.8 with A < 0:
    both clipped, so no gradient and table[0] stays [0, 1, -1]."""
    policy = BigramLM()
    ledger = FlopsLedger(0.0)
    batch, lengths = rows_batch(*PAIR)
    result = make(policy, "grpo", lr=2.0, iterations=2, ledger=ledger).update(batch, lengths, seed=0)
    assert policy.table[0].tolist() == pytest.approx([0.0, 1.0, -1.0], abs=1e-6)
    assert policy.table[1:].abs().max() == 0
    s = 1 + math.e + 1 / math.e
    rho = (3 * math.e / s, 3 / math.e / s)
    assert rho[0] > 1.2 and rho[1] < 0.8
    assert result.updates == 2 and result.metrics["actor/clip_frac"] == 1.0
    assert result.metrics["actor/ratio_mean"] == pytest.approx(sum(rho) / 2, rel=1e-5)
    assert float(policy.table.grad.abs().max()) == 0.0, "every token clipped: zero gradient"
    # FLOPs: 2 iterations x 2 rows trained (3x forward) + one forward per row for the old log-probs
    ledger.settle()
    assert ledger.train == pytest.approx(2 * 2 * sequence_train_flops(SHAPE, 2) + 2 * sequence_forward_flops(SHAPE, 2))
    assert ledger.wasted == 0


def test_ppo_two_iterations_dapo_clip_higher_lets_the_positive_row_through():
    """lr 1/2: iteration 1 moves table[0] to [0, 1/4, -1/4]. Iteration 2: rho_1 = 3e^{1/4}/S = 1.258 is
    inside DAPO's [0.8, 1.28] (not clipped), rho_2 = 3e^{-1/4}/S = 0.763 < 0.8 with A < 0 (clipped).
    Token mean over 2 tokens: gradient of table[0] = -(1/2) rho_1 (e1 - p'), p' = softmax([0, 1/4, -1/4])."""
    policy = BigramLM()
    result = make(policy, "dapo", lr=0.5, iterations=2).update(*rows_batch(*PAIR), seed=0)
    w1 = torch.tensor([0.0, 0.25, -0.25])
    p = torch.softmax(w1, 0)
    rho1, rho2 = float(3 * p[1]), float(3 * p[2])
    assert 0.8 < rho1 < 1.28 and rho2 < 0.8
    grad = -0.5 * rho1 * (onehot(1) - p)
    assert torch.allclose(policy.table.grad[0], grad, atol=1e-6)
    assert torch.allclose(policy.table[0].detach(), w1 - 0.5 * grad, atol=1e-6)
    assert result.metrics["actor/clip_frac"] == 0.5


@pytest.mark.parametrize("minibatches, scale", [(1, 0.5), (2, 1.0)])
def test_minibatches_each_step_on_their_own_rows(minibatches, scale):
    """Rows 0 -> 1 (A = +1) and 1 -> 2 (A = -1) touch different rows of the table. One minibatch: one step,
    each row's gradient divided by B = 2. Two minibatches: one step each, each divided by its own B = 1."""
    policy = BigramLM()
    result = make(policy, "grpo", minibatches=minibatches).update(*rows_batch([([0], [1]), ([1], [2])], [1.0, -1.0]),
                                                                  seed=3)
    assert result.updates == minibatches
    assert torch.allclose(policy.table[0].detach(), scale * uniform_score(1), atol=1e-7)
    assert torch.allclose(policy.table[1].detach(), -scale * uniform_score(2), atol=1e-7)


def test_minibatch_order_comes_from_the_seed_alone():
    """Three minibatches over one context with AdamW: the order matters, and only ``seed`` sets it."""
    rows = ([([0], [1]), ([0], [2]), ([0], [1, 1]), ([0], [2, 2, 0]), ([0], [0])], [1.0, -1.0, 0.5, -0.5, 0.25])

    def run(seed, global_seed):
        torch.manual_seed(global_seed)
        policy = BigramLM()
        make(policy, optimizer=torch.optim.AdamW(policy.parameters(), lr=0.1), minibatches=3).update(
            *rows_batch(*rows), seed=seed)
        return policy.table.detach().clone()

    assert torch.equal(run(0, 1), run(0, 2)), "the global RNG must not matter"
    assert not torch.allclose(run(0, 1), run(1, 1)), "another seed, another order, other weights"


def test_kl_to_a_reference_trains_zero_advantage_rows_by_hand():
    """beta = 1/2, every advantage 0, reference table[0] = [0, ln 2, 0] (p_ref = [1/4, 1/2, 1/4]), policy
    uniform. k3 = exp(d) - d - 1 with d = log p_ref - log p: row 0 -> 1: d = ln 1.5; row 1 -> 2: d = ln 0.75.
    d k3 / d log p = 1 - exp(d): -1/2 and +1/4. GRPO (B = 2): gradient of table[0] =
    (beta / 2)(-1/2 (e1 - 1/3) + 1/4 (e2 - 1/3)) = [1/48, -5/48, 1/12]. Rows are never skipped under KL."""
    policy, reference = BigramLM(), BigramLM([[0.0, math.log(2), 0.0], [0, 0, 0], [0, 0, 0]])
    updater = make(policy, "grpo", beta=0.5, reference=reference, skip=True)
    result = updater.update(*rows_batch(PAIR[0], [0.0, 0.0]), seed=0)
    assert policy.table.grad[0].tolist() == pytest.approx([1 / 48, -5 / 48, 1 / 12], abs=1e-7)
    assert result.trained_rows == 2 and result.updates == 1
    kl = ((1.5 - math.log(1.5) - 1) + (0.75 - math.log(0.75) - 1)) / 2
    assert result.metrics["actor/kl"] == pytest.approx(kl, rel=1e-5)
    assert result.metrics["actor/loss"] == pytest.approx(0.5 * kl, rel=1e-5)
    # FLOPs: each row trained (3x forward) and run once through the reference; all wasted (A = 0)
    ledger = settled(updater)
    per_row = sequence_train_flops(SHAPE, 2) + sequence_forward_flops(SHAPE, 2)
    assert ledger.train == pytest.approx(2 * per_row) and ledger.wasted == pytest.approx(2 * per_row)


def test_without_beta_the_reference_is_not_used():
    policy, reference = BigramLM(), BigramLM([[0.0, 5.0, 0.0], [0, 0, 0], [0, 0, 0]])
    updater = make(policy, "grpo", beta=0.0, reference=reference)
    result = updater.update(*rows_batch(PAIR[0], [0.0, 0.0]), seed=0)
    assert result.trained_rows == 0 and result.updates == 1 and "actor/kl" not in result.metrics
    assert settled(updater).train == 0


@pytest.mark.parametrize("skip", [True, False])
def test_zero_advantage_rows_skipped_or_trained_and_charged(skip):
    """Row 0 (A = +1, 2 tokens) is trained either way; row 1 (A = 0, 3 tokens) only without skipping, and
    then its training is wasted. The gradient is the same: row 1 adds exactly zero."""
    policy = BigramLM()
    updater = make(policy, "grpo", skip=skip)
    result = updater.update(*rows_batch([([0], [1]), ([0, 1], [2, 2])], [1.0, 0.0]), seed=0)
    assert result.trained_rows == (1 if skip else 2)
    assert torch.allclose(policy.table.grad[0], -0.5 * uniform_score(1), atol=1e-7)
    ledger = settled(updater)
    wasted = 0.0 if skip else sequence_train_flops(SHAPE, 4)
    assert ledger.train == pytest.approx(sequence_train_flops(SHAPE, 2) + wasted)
    assert ledger.wasted == pytest.approx(wasted)


def test_a_zero_gradient_step_still_moves_momentum():
    """SGD momentum 0.9, lr 1: step 1 on row 0 -> 1 (A = +1) sets buf = g = -(e1 - 1/3) and table[0] = -g;
    step 2 on zero-advantage rows (skipped: no forward) has gradient 0, buf = 0.9 g: table[0] = -1.9 g."""
    policy = BigramLM()
    updater = make(policy, optimizer=torch.optim.SGD(policy.parameters(), lr=1.0, momentum=0.9))
    updater.update(*rows_batch([([0], [1])], [1.0]), seed=0)
    g = -uniform_score(1)
    assert torch.allclose(policy.table[0].detach(), -g, atol=1e-7)
    result = updater.update(*rows_batch(PAIR[0], [0.0, 0.0]), seed=0)
    assert result.updates == 1 and result.trained_rows == 0
    assert result.metrics == {"actor/grad_norm": 0.0, "actor/loss": 0.0}
    assert torch.allclose(policy.table[0].detach(), -1.9 * g, atol=1e-6)
    assert torch.equal(policy.table.grad, torch.zeros(V, V))


def test_empty_batch_on_one_process_takes_no_step():
    policy = BigramLM()
    result = make(policy, "grpo").update(RolloutBatch.empty(), [], seed=0)
    assert (result.updates, result.skipped, result.trained_rows) == (0, 0, 0) and policy.table.grad is None


def test_gradient_clipping_by_hand():
    """grad_clip 0.1 on the grpo gradient of TWO_ROWS: SGD steps by 0.1 g / |g|; grad_norm logs |g| before clipping."""
    policy = BigramLM()
    result = make(policy, "grpo", grad_clip=0.1).update(*rows_batch(*TWO_ROWS), seed=0)
    g = torch.tensor([[0, -1 / 4, 1 / 4], [1 / 12, 1 / 12, -1 / 6], [0, 0, 0]])
    assert result.metrics["actor/grad_norm"] == pytest.approx(float(g.norm()), rel=1e-6)
    assert torch.allclose(policy.table.detach(), -0.1 * g / g.norm(), atol=1e-6)


def test_temperature_divides_the_logits():
    """T = 2, table[0] = [0, ln 4, 0]: p = softmax([0, ln 2, 0]) = [1/4, 1/2, 1/4];
    d log p_1 / d table[0] = (e1 - p) / 2; gradient (A = +1, B = 1) = [1/8, -1/4, 1/8]."""
    policy = BigramLM([[0.0, math.log(4), 0.0], [0, 0, 0], [0, 0, 0]])
    make(policy, "grpo", lr=0.0, temperature=2.0).update(*rows_batch([([0], [1])], [1.0]), seed=0)
    assert policy.table.grad[0].tolist() == pytest.approx([1 / 8, -1 / 4, 1 / 8], abs=1e-7)


class OtherRank:
    """A second rank simulated in one process: ``reduce`` adds its numbers ([rows, tokens, trainable rows,
    trainable rows with non-zero advantage] of each minibatch, then [non-finite flag]) to this rank's."""

    def __init__(self, rows, tokens, trainable, nonfinite=0.0):
        self.counts, self.flag, self.calls = [rows, tokens, trainable, trainable], [nonfinite], []

    def __call__(self, values):
        self.calls.append(list(values))
        other = self.counts if len(values) == 4 else self.flag
        return [v + o for v, o in zip(values, other)]


def test_second_rank_counts_normalise_the_loss_and_ddp_averaging_is_undone():
    """This rank: row 0 -> 1, A = +1; the other rank: 1 row, trainable. GRPO over the job's B = 2 rows,
    times world_size 2 (DDP averages the ranks' gradients): this rank's gradient is -(e1 - 1/3)."""
    policy, other = BigramLM(), OtherRank(1, 5, 1)
    updater = make(policy, "grpo", lr=0.0, reduce=other, world_size=2)
    result = updater.update(*rows_batch([([0], [1])], [1.0]), seed=0)
    assert other.calls == [[1.0, 1.0, 1.0, 1.0], [0.0]]
    assert torch.allclose(policy.table.grad[0], -uniform_score(1), atol=1e-7)
    assert result.metrics["actor/loss"] == pytest.approx(-0.5), "the loss itself is this rank's share of the job's"
    # DAPO over the job's 1 + 5 tokens
    policy = BigramLM()
    make(policy, "dapo", lr=0.0, reduce=OtherRank(1, 5, 1), world_size=2).update(*rows_batch([([0], [1])], [1.0]),
                                                                                   seed=0)
    assert torch.allclose(policy.table.grad[0], -2 / 6 * uniform_score(1), atol=1e-7)


@pytest.mark.parametrize("mine", ["zero_advantage_rows", "no_rows"])
def test_null_pass_when_only_the_other_rank_trains(mine):
    """This rank has nothing to train but the other does: a zero loss through the policy (zero gradient on
    every parameter, for DDP's all-reduce) and the optimiser steps, like the other rank's."""
    policy = StrictBigram()
    batch, lengths = rows_batch(PAIR[0], [0.0, 0.0]) if mine == "zero_advantage_rows" else (RolloutBatch.empty(), [])
    momentum = torch.optim.SGD(policy.parameters(), lr=1.0, momentum=0.9)
    momentum.state[policy.table]["momentum_buffer"] = torch.ones(V, V)  # the other rank's earlier steps
    updater = make(policy, optimizer=momentum, reduce=OtherRank(2, 2, 2), world_size=2)
    result = updater.update(batch, lengths, seed=0)
    assert result.updates == 1 and result.trained_rows == 0 and result.metrics["actor/loss"] == 0.0
    assert torch.equal(policy.table.grad, torch.zeros(V, V)), "a backward ran, with zero gradient"
    assert torch.allclose(policy.table.detach(), -0.9 * torch.ones(V, V)), "the optimiser stepped"
    assert settled(updater).train == 0
    ((ids, _),) = policy.calls
    assert len(ids) == 1, "one row through the policy"


def test_nothing_anywhere_takes_no_step():
    policy = BigramLM()
    result = make(policy, reduce=OtherRank(0, 0, 0), world_size=2).update(RolloutBatch.empty(), [], seed=0)
    assert result == UpdateResult() and policy.table.grad is None


def test_every_rank_zero_advantage_takes_the_zero_gradient_step():
    policy = BigramLM()
    result = make(policy, reduce=OtherRank(2, 2, 0), world_size=2).update(*rows_batch(PAIR[0], [0.0, 0.0]), seed=0)
    assert result.updates == 1 and torch.equal(policy.table.grad, torch.zeros(V, V))


def test_a_non_finite_loss_on_another_rank_skips_the_update_here(caplog):
    policy = BigramLM()
    with caplog.at_level(logging.WARNING, logger="sgpo.algos.update"):
        result = make(policy, reduce=OtherRank(1, 1, 1, nonfinite=1.0), world_size=2).update(
            *rows_batch([([0], [1])], [1.0]), seed=0)
    assert (result.updates, result.skipped, result.trained_rows) == (0, 1, 0)
    assert policy.table.grad is None and policy.table.abs().max() == 0
    assert [r.getMessage() for r in caplog.records] == ["non-finite loss (-0.5): update skipped"]


def nan_loss(logprobs, old, adv, mask, ref=None, **_):
    return (logprobs * mask).sum() * float("nan"), {}


def nan_gradient_loss(logprobs, old, adv, mask, ref=None, **_):
    """A finite loss (0) whose gradient is NaN: d sqrt(x)/dx at 0 is inf, times 0."""
    return torch.sqrt((logprobs * 0.0).sum()), {}


@pytest.mark.parametrize("loss_fn, message", [(nan_loss, "non-finite loss (nan): update skipped"),
                                              (nan_gradient_loss, "non-finite gradient norm: update skipped")])
def test_non_finite_loss_or_gradient_skips_the_update(caplog, loss_fn, message):
    policy = BigramLM()
    updater = PolicyUpdater(policy, torch.optim.SGD(policy.parameters(), lr=1.0), loss_fn, {}, iterations=1,
                            minibatches=2, skip_zero_adv=True, grad_clip=1.0, temperature=1.0,
                            ledger=FlopsLedger(0.0), shape=SHAPE)
    with caplog.at_level(logging.WARNING, logger="sgpo.algos.update"):
        result = updater.update(*rows_batch(PAIR[0], [1.0, -1.0]), seed=0)
    assert (result.updates, result.skipped, result.trained_rows) == (0, 2, 0)
    assert policy.table.grad is None, "the non-finite gradient is cleared"
    assert policy.table.abs().max() == 0
    assert [r.getMessage() for r in caplog.records] == [message, message]


def test_parameters_are_the_optimisers():
    policy = BigramLM()
    updater = make(policy)
    assert updater.parameters() == [policy.table]
    assert sum_in_one_process([1.0, 2.0]) == [1.0, 2.0]


def test_every_forward_gets_its_rows_attention_mask():
    """Old log-probs, reference and training passes all run the batch's rows with the batch's attention mask."""
    policy, reference = StrictBigram(), StrictBigram()
    batch, lengths = rows_batch([([0], [1, 2]), ([0, 1], [2])], [1.0, -1.0])
    make(policy, "grpo", iterations=2, beta=0.5, reference=reference).update(batch, lengths, seed=0)
    def rows(ids, mask):
        return sorted(zip(map(tuple, ids), map(tuple, mask)))

    assert len(policy.calls) == 3 and len(reference.calls) == 1, "old log-probs once, then 2 training passes"
    for ids, mask in policy.calls + reference.calls:
        assert rows(ids, mask) == rows(batch.input_ids.tolist(), batch.attention_mask.tolist())


def test_the_null_pass_runs_one_row_of_the_batch_or_one_dummy_pair():
    """Minibatch 1 holds this rank's only row (trained); minibatch 2 holds none of its rows while the other
    rank trains: the null pass runs row 0 of the batch. A rank with no rows at all runs [[0, 0]]."""
    policy = StrictBigram()
    batch, lengths = rows_batch([([0], [1, 2])], [1.0])
    result = make(policy, lr=0.0, minibatches=2, reduce=OtherRank(1, 1, 1), world_size=2).update(batch, lengths, seed=0)
    assert result.updates == 2 and result.trained_rows == 1
    assert policy.calls == [(batch.input_ids.tolist(), batch.attention_mask.tolist())] * 2
    empty = StrictBigram()
    make(empty, lr=0.0, reduce=OtherRank(1, 1, 1), world_size=2).update(RolloutBatch.empty(), [], seed=0)
    assert empty.calls == [([[0, 0]], [[1, 1]])]


def test_frozen_log_probs_use_the_sampling_temperature():
    """T = 2, lr 0: the old log-probs of iteration 2 are the policy's own at T = 2 (ratio exactly 1), and a
    reference equal to the policy has KL 0; at T = 1 neither would hold (table[0] = [0, ln 4, 0])."""
    table = [[0.0, math.log(4), 0.0], [0, 0, 0], [0, 0, 0]]
    policy = BigramLM(table)
    result = make(policy, "grpo", lr=0.0, iterations=2, temperature=2.0, beta=0.5,
                  reference=BigramLM(table)).update(*rows_batch(PAIR[0], [1.0, -1.0]), seed=0)
    assert result.metrics["actor/ratio_mean"] == pytest.approx(1.0, abs=1e-7)
    assert result.metrics["actor/kl"] == pytest.approx(0.0, abs=1e-7)


def test_skipped_updates_leave_no_gradient_behind():
    """A finite update leaves gradients; a later non-finite one (loss or gradient) clears them to None."""
    for bad in (nan_loss, nan_gradient_loss):
        policy = BigramLM()
        updater = make(policy)
        updater.update(*rows_batch([([0], [1])], [1.0]), seed=0)
        assert policy.table.grad is not None
        updater.loss_fn = bad
        assert updater.update(*rows_batch([([0], [1])], [1.0]), seed=0).skipped == 1
        assert policy.table.grad is None, bad.__name__


def test_counts_add_up_over_minibatches():
    policy = BigramLM()
    result = make(policy, minibatches=2).update(*rows_batch([([0], [1]), ([1], [2])], [1.0, -1.0]), seed=0)
    assert (result.updates, result.zero_gradient_steps, result.trained_rows) == (2, 0, 2)
    zero = make(BigramLM(), minibatches=2).update(*rows_batch(PAIR[0], [0.0, 0.0]), seed=0)
    assert (zero.updates, zero.zero_gradient_steps, zero.trained_rows) == (2, 2, 0), "two zero-gradient steps"
    # skipping off: the zero-advantage rows are trained, and those steps still carry no gradient
    trained = make(BigramLM(), minibatches=2, skip=False).update(*rows_batch(PAIR[0], [0.0, 0.0]), seed=0)
    assert (trained.updates, trained.zero_gradient_steps, trained.trained_rows) == (2, 2, 2)
    mixed = make(BigramLM(), minibatches=1, skip=False).update(*rows_batch([([0], [1]), ([1], [2])], [1.0, 0.0]), seed=0)
    assert (mixed.updates, mixed.zero_gradient_steps, mixed.trained_rows) == (1, 0, 2)
