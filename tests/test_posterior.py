"""The Beta posterior and its closed forms (sgpo/data/posterior.py) on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sgpo.data.posterior import (
    MIN_REFIT_STRENGTH,
    BetaPosterior,
    advantage_mass,
    beta_binomial_loglik,
    beta_binomial_pmf,
    fit_beta_prior,
    fit_beta_prior_ml,
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


def screened_counts(p: np.ndarray, group: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Screen 2 rollouts per query; finish the group of ``group`` only when the screen is mixed."""
    s2 = rng.binomial(2, p)
    mixed = s2 == 1
    s = s2 + np.where(mixed, rng.binomial(group - 2, p), 0)
    return s.astype(float), np.where(mixed, group, 2).astype(float)


def test_ml_prior_recovers_the_spread_where_stopping_biases_the_moments():
    rng = np.random.default_rng(0)
    # every query at p = 0.2: no spread at all (strength at its cap); the moment fit of these counts is
    # fooled by the stopping rule into a strong spread (strength about 2)
    s, n = screened_counts(np.full(4000, 0.2), 4, rng)
    a0, b0 = fit_beta_prior_ml(s, n, max_strength=64.0)
    assert a0 + b0 > 32 and a0 / (a0 + b0) == pytest.approx(0.2, abs=0.02)
    m = (s / n).mean()
    moment_rho = ((s * (s - 1) / (n * (n - 1))).mean() - m * m) / (m * (1 - m))
    assert 1 / moment_rho - 1 < 4  # what the likelihood avoids
    # p ~ Beta(2, 6) under the same stopping rule: strength 8 and mean 1/4 come back
    s, n = screened_counts(rng.beta(2.0, 6.0, 20000), 8, rng)
    a0, b0 = fit_beta_prior_ml(s, n)
    assert a0 + b0 == pytest.approx(8.0, rel=0.25) and a0 / (a0 + b0) == pytest.approx(0.25, abs=0.02)


def test_ml_prior_is_a_maximum_within_its_bounds():
    rng = np.random.default_rng(1)
    k = rng.binomial(8, rng.beta(0.4, 0.6, 3000)).astype(float)
    a0, b0 = fit_beta_prior_ml(k, np.full(k.size, 8.0), init=(3.0, 5.0))
    best = beta_binomial_loglik(a0, b0, k, np.full(k.size, 8.0))
    for da, db in ((0.02, 0), (-0.02, 0), (0, 0.02), (0, -0.02)):
        assert beta_binomial_loglik(a0 + da, b0 + db, k, np.full(k.size, 8.0)) < best
    assert (a0, b0) == pytest.approx((0.4, 0.6), rel=0.15)
    # only never- and always-solved queries: the weakest strength allowed; an empty fit refuses
    k = np.array([0.0, 8.0] * 50)
    assert sum(fit_beta_prior_ml(k, np.full(100, 8.0))) == pytest.approx(MIN_REFIT_STRENGTH, rel=1e-3)
    with pytest.raises(ValueError, match="no query has a rollout"):
        fit_beta_prior_ml(np.zeros(3), np.zeros(3))


def test_refit_prior_moves_the_evidence_onto_the_refitted_prior():
    post = BetaPosterior(np.zeros(30), 0, half_life_steps=None, refit_prior=True)
    outcomes = [0] * 12 + [2] * 4 + [1] * 8  # 24 of 30 queries observed, 2 rollouts each
    for q, succ in enumerate(outcomes):
        post.update(q, float(succ), 2.0)
    post.end_step()
    s = np.array(outcomes + [0] * 6, float)
    n = np.array([2.0] * 24 + [0.0] * 6)
    assert (post.alpha0, post.beta0) == pytest.approx(fit_beta_prior_ml(s, n), rel=1e-4)
    assert (post.alpha0, post.beta0) != pytest.approx((1.0, 1.0), rel=1e-2)
    assert post.a - post.alpha0 == pytest.approx(s) and post.b - post.beta0 == pytest.approx(n - s)
    before = (post.alpha0, post.beta0)
    assert post.refit()  # the same evidence again: the same prior
    assert (post.alpha0, post.beta0) == pytest.approx(before, rel=1e-4)


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
