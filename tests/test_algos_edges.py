"""Advantages and losses at their edges, by hand: empty input, gaps and singletons in the group index,
the eps of the std, output dtypes, single-token batches, the surrogate's defaults, the KL switch and
the exact error of a missing normaliser."""

from __future__ import annotations

import math
import re

import pytest
import torch

from sgpo.algos.advantages import group_advantages
from sgpo.algos.losses import BatchCounts, aggregate, clipped_policy_loss


def test_advantages_of_nothing():
    adv, m = group_advantages(torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert adv.shape == (0,) and m == {"num_groups": 0, "num_degenerate_groups": 0, "frac_zero_adv_groups": 0.0}


def test_advantages_count_only_groups_present_and_singletons_are_degenerate():
    """Group 1 is absent (a gap in the index); group 3 has one rollout: 3 groups, 1 degenerate."""
    adv, m = group_advantages(torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0]), torch.tensor([0, 0, 2, 2, 3]))
    assert m == {"num_groups": 3, "num_degenerate_groups": 1, "frac_zero_adv_groups": 1 / 3}
    assert adv.dtype == torch.float32 and adv[4] == 0


def test_advantages_divide_by_std_plus_eps():
    """Rewards [1, 0]: mean 1/2, sample std sqrt(1/2); with eps = 1/2: A = +-(1/2) / (sqrt(1/2) + 1/2)."""
    adv, _ = group_advantages(torch.tensor([1.0, 0.0]), torch.tensor([0, 0]), eps=0.5)
    a = 0.5 / (math.sqrt(0.5) + 0.5)
    assert adv.tolist() == [pytest.approx(a, rel=1e-6), pytest.approx(-a, rel=1e-6)]


def test_single_token_batches_by_hand():
    """One row, one token, value 3: token-mean 3 / 1; seq-mean 3 / 1; token-sum-norm 3 / (1 x 2)."""
    v, m = torch.tensor([[3.0, 5.0]]), torch.tensor([[1.0, 0.0]])
    assert aggregate(v, m, "token-mean").item() == 3.0
    assert aggregate(v, m, "seq-mean-token-mean").item() == 3.0
    assert aggregate(v, m, "seq-mean-token-sum-norm", normalizer=2).item() == 1.5
    assert aggregate(v, m, "token-mean", BatchCounts(rows=4.0, tokens=6.0)).item() == 0.5
    assert aggregate(v, m, "seq-mean-token-sum-norm", BatchCounts(rows=3.0, tokens=1.0), normalizer=2).item() == 0.5
    assert aggregate(v, m.double(), "token-mean").dtype == torch.float32, "the mask takes the values' dtype"


def test_missing_normaliser_is_an_exact_error():
    with pytest.raises(ValueError, match="^" + re.escape(
            "seq-mean-token-sum-norm needs a constant normalizer (max completion tokens)") + "$"):
        aggregate(torch.ones(1, 1), torch.ones(1, 1), "seq-mean-token-sum-norm")


def test_surrogate_defaults_are_a_symmetric_clip_of_0_2_without_kl_and_sequence_means():
    """Two rows, one token each: rho = 1.5 (A = +1) is clipped to 1.2; rho = 0.5 (A = -1) to 0.8.
    Per-token loss -1.2 and +0.8; seq-mean over 2 rows: -0.2. A reference without beta adds nothing."""
    logp = torch.log(torch.tensor([[1.5], [0.5]]))
    old = torch.zeros(2, 1)
    loss, metrics = clipped_policy_loss(logp, old, torch.tensor([1.0, -1.0]), torch.ones(2, 1),
                                        ref_logprobs=torch.full((2, 1), -1.0))
    assert loss.item() == pytest.approx(-0.2, abs=1e-6)
    assert metrics["actor/pg_loss"] == pytest.approx(-0.2, abs=1e-6) and "actor/kl" not in metrics
    assert metrics["actor/clip_frac"] == 1.0 and metrics["actor/ratio_mean"] == pytest.approx(1.0)
    # token-mean over a single token: clip fraction and ratio mean are over 1 token, not 2
    one, m1 = clipped_policy_loss(logp[:1], old[:1], torch.tensor([1.0]), torch.ones(1, 1), mode="token-mean")
    assert one.item() == pytest.approx(-1.2) and m1["actor/clip_frac"] == 1.0
    assert m1["actor/ratio_mean"] == pytest.approx(1.5)


def test_kl_term_needs_both_beta_and_a_reference():
    """One token, log p = log ref - ln 2: d = ln 2, k3 = 2 - ln 2 - 1; the metric is over 1 token."""
    logp, ref = torch.tensor([[math.log(0.25)]]), torch.tensor([[math.log(0.5)]])
    loss, m = clipped_policy_loss(logp, logp, torch.zeros(1), torch.ones(1, 1), ref_logprobs=ref, beta=0.5)
    k3 = 2 - math.log(2) - 1
    assert m["actor/kl"] == pytest.approx(k3, rel=1e-6) and loss.item() == pytest.approx(0.5 * k3, rel=1e-6)
    _, without_ref = clipped_policy_loss(logp, logp, torch.zeros(1), torch.ones(1, 1), beta=0.5)
    assert "actor/kl" not in without_ref
