"""Advantages and losses against hand-computed values and plain-loop implementations."""

import math

import pytest
import torch

from sgpo.algos.advantages import group_advantages
from sgpo.algos.losses import LOSSES, aggregate


def loop_advantages(rewards, groups, normalize_std=True, eps=1e-6):
    out = []
    for r, g in zip(rewards, groups):
        members = [x for x, h in zip(rewards, groups) if h == g]
        mean = sum(members) / len(members)
        std = math.sqrt(sum((x - mean) ** 2 for x in members) / (len(members) - 1)) if len(members) > 1 else 0
        out.append(0.0 if std == 0 else ((r - mean) / (std + eps) if normalize_std else r - mean))
    return out


def test_advantages_hand_computed_unequal_groups():
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2])
    adv, m = group_advantages(rewards, groups)
    # group 0: mean .5, std sqrt(.5) -> +-0.7071; group 1: degenerate; group 2: mean .25, std .5
    expected = [0.70711, -0.70711, 0, 0, -0.5, -0.5, -0.5, 1.5]
    assert adv.tolist() == pytest.approx(expected, abs=1e-4)
    assert m["num_groups"] == 3 and m["num_degenerate_groups"] == 1
    assert m["frac_zero_adv_groups"] == pytest.approx(1 / 3)
    raw, _ = group_advantages(rewards, groups, normalize_std=False)
    assert raw.tolist() == pytest.approx([0.5, -0.5, 0, 0, -0.25, -0.25, -0.25, 0.75])


def test_advantages_match_loop_on_random_groups():
    gen = torch.Generator().manual_seed(0)
    groups = torch.randint(0, 12, (200,), generator=gen)
    rewards = torch.randint(0, 2, (200,), generator=gen).float()
    for norm in (True, False):
        adv, _ = group_advantages(rewards, groups, normalize_std=norm)
        assert adv.tolist() == pytest.approx(loop_advantages(rewards.tolist(), groups.tolist(), norm), abs=1e-5)


def loop_loss(logp, old, adv, mask, eps_low, eps_high, mode, normalizer=None):
    per_seq, tok_sum, tok_n = [], 0.0, 0.0
    for b in range(len(logp)):
        terms = []
        for t in range(len(logp[b])):
            if mask[b][t]:
                ratio = math.exp(logp[b][t] - old[b][t])
                clipped = min(max(ratio, 1 - eps_low), 1 + eps_high)
                terms.append(-min(ratio * adv[b], clipped * adv[b]))
        per_seq.append(sum(terms) / max(len(terms), 1))
        tok_sum += sum(terms)
        tok_n += len(terms)
    if mode == "seq":
        return sum(per_seq) / len(per_seq)
    if mode == "tok":
        return tok_sum / tok_n
    return tok_sum / (len(logp) * normalizer)


def random_inputs(seed=0):
    gen = torch.Generator().manual_seed(seed)
    logp = -torch.rand(4, 6, generator=gen)
    old = logp + 0.3 * torch.randn(4, 6, generator=gen)
    adv = torch.randn(4, generator=gen)
    mask = (torch.rand(4, 6, generator=gen) > 0.3).float()
    mask[:, 0] = 1
    return logp, old, adv, mask


def test_losses_match_plain_loops():
    logp, old, adv, mask = random_inputs()
    args = (logp.tolist(), old.tolist(), adv.tolist(), mask.tolist())
    loss, _ = LOSSES.get("grpo")(logp, old, adv, mask, eps=0.2, beta=0.0)
    assert loss.item() == pytest.approx(loop_loss(*args, 0.2, 0.2, "seq"), rel=1e-5)
    loss, _ = LOSSES.get("dapo")(logp, old, adv, mask, eps_low=0.2, eps_high=0.28, beta=0.0)
    assert loss.item() == pytest.approx(loop_loss(*args, 0.2, 0.28, "tok"), rel=1e-5)
    loss, _ = LOSSES.get("dr_grpo")(logp, old, adv, mask, eps=0.2, beta=0.0, max_completion_tokens=6)
    assert loss.item() == pytest.approx(loop_loss(*args, 0.2, 0.2, "norm", 6), rel=1e-5)


def test_on_policy_grpo_hand_value_and_gradient():
    # one update per batch: ratio 1, loss = -mean_b(A_b) over sequences with tokens
    logp = torch.log(torch.tensor([[0.5, 0.25], [0.5, 0.5]])).requires_grad_(True)
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss, m = LOSSES.get("grpo")(logp, logp.detach(), adv, mask, eps=0.2, beta=0.0)
    assert loss.item() == pytest.approx(0.0)
    loss.backward()
    # d/dlogp of -ratio*A / n_tokens / B: row 0 tokens -1/2/2, row 1 token +1/1/2
    assert logp.grad.flatten().tolist() == pytest.approx([-0.25, -0.25, 0.5, 0.0])
    assert m["actor/clip_frac"] == 0.0


def test_kl_term_and_clip_fraction():
    logp, old, adv, mask = random_inputs(1)
    ref = logp + 0.1
    plain, _ = LOSSES.get("grpo")(logp, old, adv, mask, eps=0.2, beta=0.0)
    with_kl, m = LOSSES.get("grpo")(logp, old, adv, mask, ref_logprobs=ref, eps=0.2, beta=0.5)
    kl = (torch.exp(torch.tensor(0.1)) - 0.1 - 1).item()
    assert with_kl.item() == pytest.approx(plain.item() + 0.5 * kl, rel=1e-5)
    assert m["actor/kl"] == pytest.approx(kl, rel=1e-5)
    assert 0 < m["actor/clip_frac"] < 1


def test_aggregate_modes_and_errors():
    v = torch.tensor([[1.0, 3.0], [2.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    assert aggregate(v, mask, "seq-mean-token-mean").item() == pytest.approx((2 + 2) / 2)
    assert aggregate(v, mask, "token-mean").item() == pytest.approx(6 / 3)
    assert aggregate(v, mask, "seq-mean-token-sum-norm", normalizer=4).item() == pytest.approx(6 / 8)
    with pytest.raises(ValueError, match="token-mean"):
        aggregate(v, mask, "nope")
