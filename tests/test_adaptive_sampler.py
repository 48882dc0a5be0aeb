"""AdaptiveSampler (sgpo/data/adaptive.py): deterministic steps within the budget, nothing dropped for
good (believed-degenerate queries revisited at the documented rate), posterior updates from every
observed group, the easy-to-hard walk, rank shares, and an exact resume from its state."""

from __future__ import annotations

import numpy as np
import pytest

from sgpo.data.adaptive import AdaptiveSampler
from sgpo.data.posterior import BetaPosterior
from sgpo.data.selection import GroupCosts

K = 8


def make(successes, *, budget=32, revisit=0.0, order="random", screen=0, sizes=(2, 4, 8), seed=0, rank=0,
         world=1, half_life=None, pool=3.0, degenerate=0.05) -> AdaptiveSampler:
    q = len(successes)
    post = BetaPosterior(np.asarray(successes, float), K, half_life_steps=half_life)
    costs = GroupCosts(np.ones(q), np.ones(q), np.full(q, 5.0))
    return AdaptiveSampler(post, costs, "knapsack", {"sizes": list(sizes), "value": "advantage", "screen": screen,
                                                     "commit_threshold": 0.5}, budget, seed=seed, pool_factor=pool,
                           degenerate_below=degenerate, revisit_prob=revisit, order=order, rank=rank, world_size=world)


MIXED = [4] * 20 + [0] * 20 + [8] * 20  # 20 informative queries, 20 unsolvable-looking, 20 trivial-looking


def believed(sampler):
    return sampler.believed_degenerate(np.arange(len(sampler.posterior)))


def strong_prior(successes):
    """A dataset whose prior is strong enough that 0/8 and 8/8 queries are believed degenerate."""
    return list(successes) + [0] * 200 + [8] * 200


def test_steps_are_deterministic_and_keep_the_budget():
    s1, s2 = make(MIXED, budget=32), make(MIXED, budget=32)
    steps1 = [s1.next_step() for _ in range(6)]
    assert steps1 == [s2.next_step() for _ in range(6)]
    for step in steps1:
        assert step and sum(g for _, g in step) <= 32 and all(g in (2, 4, 8) for _, g in step)
        assert len({q for q, _ in step}) == len(step), "a query appears once per step"
    assert steps1 != [make(MIXED, budget=32, seed=1).next_step() for _ in range(6)]


def test_believed_degenerate_queries_are_revisited_at_the_documented_rate():
    data = strong_prior(MIXED)
    never = make(data, revisit=0.0, budget=64)
    deg = believed(never)
    assert deg[20:40].all() and deg[40:60].all() and not deg[:20].any()
    taken = [q for _ in range(40) for q, _ in never.next_step()]
    assert not deg[taken].any(), "revisit_prob = 0: no believed-degenerate query is ever given a group"
    # enough informative queries that the walk stops early, so the revisit cap (the budget) never binds
    sometimes = make([4] * 300 + [0] * 300, revisit=0.2, budget=64)
    sometimes.posterior.a[300:], sometimes.posterior.b[300:] = 0.01, 60.0  # believed unsolvable
    deg = believed(sometimes)
    assert deg.sum() == 300
    revisits = 0
    for _ in range(40):
        step = sometimes.next_step()
        revisits += sum(1 for q, g in step if deg[q])
        assert all(g == 2 for q, g in step if deg[q]), "a revisit is a group of the smallest size"
    met = sometimes.state.degenerate_met
    assert met > 100 and revisits == sometimes.state.revisits
    assert revisits / met == pytest.approx(0.2, abs=0.05)


def test_a_revisited_query_that_turns_learnable_comes_back():
    data = strong_prior(MIXED)
    sampler = make(data, revisit=0.0, budget=64)
    assert believed(sampler)[25]
    for _ in range(3):  # the policy now solves query 25 half the time
        sampler.observe(25, 4.0, 8.0)
    assert not believed(sampler)[25]
    taken = {q for _ in range(60) for q, _ in sampler.next_step()}
    assert 25 in taken


def test_observe_updates_the_posterior_and_decay_forgets():
    sampler = make(MIXED, half_life=2.0)
    a0, b0 = sampler.posterior.a[3], sampler.posterior.b[3]
    sampler.observe(3, 2.0, 6.0)
    assert (sampler.posterior.a[3], sampler.posterior.b[3]) == pytest.approx((a0 + 2, b0 + 4))
    sampler.next_step()  # the first step does not decay
    sampler.next_step()
    alpha0 = sampler.posterior.alpha0
    assert sampler.posterior.a[3] == pytest.approx(alpha0 + 2 ** -0.5 * (a0 + 2 - alpha0))


def test_easy_to_hard_walks_by_posterior_mean():
    data = [1, 7, 3, 5, 2, 6, 4, 0, 8, 4]
    sampler = make(data, order="easy_to_hard")
    means = sampler.posterior.mean[sampler.order]
    assert (np.diff(means) <= 1e-12).all()
    assert not (np.diff(make(data).posterior.mean[make(data).order]) <= 1e-12).all()


def test_ranks_plan_the_same_steps_and_split_them():
    ranks = [make(MIXED, budget=32, rank=r, world=2, half_life=8.0) for r in range(2)]
    single = make(MIXED, budget=32, half_life=8.0)
    for _ in range(4):
        full = single.next_step()
        shares = [r.local(r.next_step()) for r in ranks]
        assert sorted(shares[0] + shares[1]) == sorted(full) and not set(shares[0]) & set(shares[1])
        for q, g in full:  # every rank observes every rank's groups (the module shares them)
            for sampler in (*ranks, single):
                sampler.observe(q, g / 4, g)
        assert ranks[0].plan_digest() == ranks[1].plan_digest() == single.plan_digest()


def test_a_walk_that_wraps_into_the_next_cycle_meets_each_query_once():
    sampler = make([4] * 20, budget=16, sizes=(2,), pool=1.5)  # 12 candidates a step: walks wrap mid-step
    for _ in range(12):
        step = sampler.next_step()
        assert len({q for q, _ in step}) == len(step), step


def test_when_every_query_is_believed_degenerate_the_step_is_not_empty():
    sampler = make([0] * 30, revisit=0.0, budget=16)
    sampler.posterior.a[:], sampler.posterior.b[:] = 0.01, 80.0
    assert believed(sampler).all()
    for _ in range(3):
        assert sampler.next_step(), "a run with max_steps=null would never end on empty steps"


def test_state_dict_resumes_exactly():
    a = make(strong_prior(MIXED), revisit=0.1, half_life=4.0, budget=48)
    for _ in range(5):
        for q, g in a.next_step():
            a.observe(q, g / 2, g)
    b = make(strong_prior(MIXED), revisit=0.1, half_life=4.0, budget=48)
    b.load_state_dict(a.state_dict())
    assert b.plan_digest() == a.plan_digest()
    assert [a.next_step() for _ in range(5)] == [b.next_step() for _ in range(5)]
    assert b.state.degenerate_met == a.state.degenerate_met and b.state.revisits == a.state.revisits
    with pytest.raises(ValueError, match="no posterior"):
        b.load_state_dict({"cycle": 0, "phase": 0})


def test_screening_plans_more_groups_than_the_budget_in_rollouts():
    # hard queries whose degenerate screens are not finished: a screened group costs ~2 expected rollouts
    data = [1] * 40 + [0] * 200 + [4] * 10
    plain = make(data, budget=32, sizes=(8,))
    screened = make(data, budget=32, sizes=(8,), screen=2)
    plain_step, screened_step = plain.next_step(), screened.next_step()
    assert sum(g for _, g in plain_step) <= 32
    assert len(screened_step) > len(plain_step)
    assert sum(g for _, g in screened_step) <= 2 * 32, "full sizes capped at max_rollouts_factor x budget"


def test_bad_settings_name_their_key():
    with pytest.raises(ValueError, match="selection.order='hardest'"):
        make(MIXED, order="hardest")
    with pytest.raises(ValueError, match="rollouts_per_step=4 is smaller than the largest group"):
        make(MIXED, budget=4)
    with pytest.raises(ValueError, match="revisit_prob=1.5"):
        make(MIXED, revisit=1.5)
    with pytest.raises(ValueError, match="pool_factor=0"):
        make(MIXED, pool=0)
    with pytest.raises(ValueError, match="max_rollouts_factor=0.5"):
        AdaptiveSampler(BetaPosterior(np.ones(3), K, half_life_steps=None), GroupCosts(*(np.ones(3),) * 3),
                        "knapsack", {"sizes": [2]}, 8, seed=0, pool_factor=1.0, degenerate_below=0.1,
                        revisit_prob=0.0, order="random", max_rollouts_factor=0.5)


def test_without_a_profile_the_refitted_prior_learns_the_datasets_spread():
    # 300 queries, a third never solved, a third always, a third half the time; no profile (Beta(1, 1))
    # (screen, then commit, and the decay as method=sgpo_online_prior runs them)
    truth = np.repeat([0.0, 1.0, 0.5], 100)
    post = BetaPosterior(np.zeros(300), 0, half_life_steps=64.0, refit_prior=True)
    costs = GroupCosts(np.ones(300), np.ones(300), np.full(300, 5.0))
    sampler = AdaptiveSampler(post, costs, "knapsack", {"sizes": [2, 4, 8], "value": "mixed", "screen": 2,
                                                          "commit_threshold": 0.5}, 64, seed=0, pool_factor=3.0,
                              degenerate_below=0.05, revisit_prob=0.05, order="random")
    rng = np.random.default_rng(0)
    for _ in range(30):
        for q, g in sampler.next_step():
            succ = float(rng.binomial(2, truth[q]))
            if g > 2 and (succ == 1 or sampler.commit(q, succ, 2, g)):
                succ, done = succ + float(rng.binomial(g - 2, truth[q])), g
            else:
                done = 2
            sampler.observe(q, succ, float(done))
    info = sampler.last_step_info
    assert (info["selection/prior_alpha0"], info["selection/prior_beta0"]) == (post.alpha0, post.beta0)
    # the U-shaped truth (mean 1/2, var 1/6 of the queries' p: strength 1/2) is far from the flat start
    assert post.alpha0 + post.beta0 < 1.0 and post.alpha0 / (post.alpha0 + post.beta0) == pytest.approx(0.5, abs=0.1)
    flat = make([0] * 300, budget=64)
    flat.posterior = BetaPosterior(np.zeros(300), 0, half_life_steps=None)
    flat.next_step()
    assert (flat.last_step_info["selection/prior_alpha0"], flat.last_step_info["selection/prior_beta0"]) == (1.0, 1.0)
