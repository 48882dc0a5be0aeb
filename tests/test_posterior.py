"""The Beta posterior and its closed forms (sgpo/data/posterior.py) on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sgpo.data.posterior import (
    BetaPosterior,
    advantage_mass,
    beta_binomial_pmf,
    fit_beta_prior,
    fit_beta_prior_counts,
    prob_all_fail,
    prob_mixed,
)


def test_prior_fit_recovers_the_method_of_moments_strength():
    # k = 3, rates 0, 1, 1/3, 2/3: m = 1/2, v = 5/36, rho = (3 v / (1/4) - 1) / 2 = 1/3 -> alpha0 = beta0 = 1
    assert fit_beta_prior(np.array([0, 3, 1, 2]), 3) == pytest.approx((1.0, 1.0))
    # a skewed dataset keeps its mean: alpha0 / (alpha0 + beta0) = mean rate
    a0, b0 = fit_beta_prior(np.array([0, 0, 0, 1, 3, 0, 2, 0]), 3)
    assert a0 / (a0 + b0) == pytest.approx(6 / 24)


def test_prior_strength_is_capped_and_falls_back_without_evidence():
    # rates 0, .5, .5, 1 with k = 2: v = 1/8 = m (1 - m) / k, so rho = 0 -> capped at max_strength
    assert fit_beta_prior(np.array([0, 1, 1, 2]), 2, max_strength=64.0) == pytest.approx((32.0, 32.0))
    assert fit_beta_prior(np.array([0, 1, 1, 2]), 2, max_strength=10.0) == pytest.approx((5.0, 5.0))
    assert fit_beta_prior(np.zeros(0), 8) == (1.0, 1.0)
    assert fit_beta_prior(np.array([1, 2]), 0) == (1.0, 1.0)
    a0, b0 = fit_beta_prior(np.array([0, 1, 1, 1]), 1)  # one sample each: the mean, strength 2
    assert (a0, b0) == pytest.approx((1.5, 0.5))


def test_beta_binomial_closed_forms():
    one = np.ones(1)
    assert beta_binomial_pmf(one, one, 2)[0] == pytest.approx([1 / 3, 1 / 3, 1 / 3])  # uniform p: uniform s
    assert beta_binomial_pmf(np.array([2.0]), one, 1)[0] == pytest.approx([1 / 3, 2 / 3])
    pmf = beta_binomial_pmf(np.array([0.3, 5.0]), np.array([2.5, 0.7]), 7)
    assert pmf.sum(axis=1) == pytest.approx([1.0, 1.0])
    # E[(1 - p)^n] under Beta(1, 9) = 9 / (9 + n): with a uniform prior a 0/8 query is mixed at G = 16
    # with probability about 0.64 (../shared/ALLOCATION.md)
    assert prob_all_fail(one, np.array([9.0]), 16)[0] == pytest.approx(9 / 25)
    assert prob_mixed(one, np.array([9.0]), 16)[0] == pytest.approx(0.64, abs=1e-4)
    assert prob_mixed(one, one, 8)[0] == pytest.approx(1 - 2 / 9)  # E[p^n] = 1 / (n + 1)
    assert prob_mixed(one, one, 1)[0] == 0.0
    # sum |A| with the unbiased std: 2 sqrt(s (n - s) (n - 1) / n); s uniform on 0..n under Beta(1, 1)
    assert advantage_mass(2).tolist() == pytest.approx([0, math.sqrt(2), 0])
    assert (beta_binomial_pmf(one, one, 2) @ advantage_mass(2))[0] == pytest.approx(math.sqrt(2) / 3)
    assert (beta_binomial_pmf(one, one, 4) @ advantage_mass(4))[0] == pytest.approx((3 + 2 * math.sqrt(3) + 3) / 5)
    assert advantage_mass(4, normalize_std=False).tolist() == pytest.approx([0, 1.5, 2, 1.5, 0])  # 2 s (n - s) / n


def test_advantage_mass_matches_the_trainers_advantages():
    import torch

    from sgpo.algos.advantages import group_advantages

    for n in (2, 3, 5, 8):
        for s in range(n + 1):
            rewards = torch.tensor([1.0] * s + [0.0] * (n - s))
            for norm in (True, False):
                adv, _ = group_advantages(rewards, torch.zeros(n, dtype=torch.long), normalize_std=norm)
                assert float(adv.abs().sum()) == pytest.approx(advantage_mass(n, norm)[s], rel=1e-4), (n, s, norm)


def test_posterior_starts_at_the_profile_updates_and_decays_toward_the_prior():
    post = BetaPosterior(np.array([0, 3, 1, 2]), 3, half_life_steps=1.0)  # prior Beta(1, 1), factor 1/2
    assert post.a == pytest.approx([1, 4, 2, 3]) and post.b == pytest.approx([4, 1, 3, 2])
    post.update(0, 3.0, 4.0)
    assert (post.a[0], post.b[0]) == pytest.approx((4.0, 5.0))
    post.decay()
    assert (post.a[0], post.b[0]) == pytest.approx((1 + 3 / 2, 1 + 4 / 2))
    assert post.mean[1] == pytest.approx((1 + 3 / 2) / (1 + 3 / 2 + 1))
    with pytest.raises(ValueError, match="3 successes in 2 rollouts"):
        post.update(2, 3.0, 2.0)
    still = BetaPosterior(np.array([0, 3, 1, 2]), 3, half_life_steps=None)
    still.decay()
    assert still.a == pytest.approx([1, 4, 2, 3])
    with pytest.raises(ValueError, match="half_life_steps=0"):
        BetaPosterior(np.array([1]), 3, half_life_steps=0)


def test_posterior_state_round_trips_and_refuses_another_size():
    post = BetaPosterior(np.array([0, 3, 1, 2]), 3, half_life_steps=8.0)
    post.update(1, 1.0, 2.0)
    other = BetaPosterior(np.array([3, 3, 3, 3]), 3, half_life_steps=8.0)
    other.load_state_dict(post.state_dict())
    assert other.a == pytest.approx(post.a) and other.b == pytest.approx(post.b) and other.alpha0 == post.alpha0
    with pytest.raises(ValueError, match="for 4 queries; this run has 2"):
        BetaPosterior(np.array([0, 1]), 3, half_life_steps=None).load_state_dict(post.state_dict())


def test_prior_fit_from_unequal_counts_by_hand():
    # rates 0, 1, 1/4, 3/4: m = 1/2; s (s - 1) / (n (n - 1)) = 0, 1, 0, 1/2: E[p^2] = 3/8, v = 1/8,
    # rho = v / (m (1 - m)) = 1/2, strength 1
    s, n = np.array([0, 2, 1, 3]), np.array([2, 2, 4, 4])
    assert fit_beta_prior_counts(s, n) == pytest.approx((0.5, 0.5))
    # a query with one rollout says nothing about the spread: left out
    assert fit_beta_prior_counts(np.append(s, 1), np.append(n, 1)) == pytest.approx((0.5, 0.5))
    # equal counts: the profile's fit exactly
    rng = np.random.default_rng(0)
    k8 = rng.binomial(8, rng.beta(0.4, 0.6, 500))
    assert fit_beta_prior_counts(k8, np.full(500, 8)) == pytest.approx(fit_beta_prior(k8, 8))
    with pytest.raises(ValueError, match="no query has 2 or more rollouts"):
        fit_beta_prior_counts(np.array([1, 0]), np.array([1, 1]))


def test_refit_prior_moves_the_evidence_onto_the_refitted_prior():
    # no profile: Beta(1, 1). Evidence 0/2 on 12 queries, 2/2 on 4, 1/2 on 8 (24 of 30): m = 1/3,
    # E[p^2] = 4/24, v = 1/6 - 1/9 = 1/18, rho = (1/18) / (2/9) = 1/4, strength 3: Beta(1, 2)
    post = BetaPosterior(np.zeros(30), 0, half_life_steps=None, refit_prior=True)
    for q, succ in enumerate([0] * 12 + [2] * 4 + [1] * 8):
        post.update(q, float(succ), 2.0)
    post.end_step()
    assert (post.alpha0, post.beta0) == pytest.approx((1.0, 2.0))
    assert (post.a[0], post.b[0]) == pytest.approx((1.0, 4.0))  # 0/2 on Beta(1, 2)
    assert (post.a[12], post.b[12]) == pytest.approx((3.0, 2.0))  # 2/2
    assert (post.a[29], post.b[29]) == pytest.approx((1.0, 2.0))  # no evidence: the prior itself
    assert post.refit()  # refitting the same evidence again changes nothing
    assert (post.alpha0, post.beta0) == pytest.approx((1.0, 2.0)) and post.a[12] == pytest.approx(3.0)


def test_refit_waits_for_enough_queries_and_is_off_by_default():
    few = BetaPosterior(np.zeros(30), 0, half_life_steps=None, refit_prior=True)
    for q in range(15):  # MIN_REFIT_QUERIES - 1 queries with two rollouts
        few.update(q, float(q % 3 == 0) * 2.0, 2.0)
    assert not few.refit() and (few.alpha0, few.beta0) == (1.0, 1.0)
    off = BetaPosterior(np.zeros(30), 0, half_life_steps=None)
    for q in range(24):
        off.update(q, 0.0, 2.0)
    off.end_step()
    assert (off.alpha0, off.beta0) == (1.0, 1.0) and off.a[0] == 1.0 and off.b[0] == 3.0
