"""Selection rules (sgpo/data/selection.py) on hand-computed values: the commit rule after a screen,
the expected rollouts and FLOPs of a group with and without screening, and the knapsack greedy."""

from __future__ import annotations

import numpy as np
import pytest

from sgpo.data.posterior import prob_mixed
from sgpo.data.selection import SELECTIONS, GroupCosts, commit_probability, group_costs, knapsack, plan_group
from sgpo.flops import ModelShape, sequence_forward_flops

ONE = np.ones(1)


def costs(prompt=1.0, rollout=1.0, train=10.0, n=1) -> GroupCosts:
    return GroupCosts(np.full(n, prompt), np.full(n, rollout), np.full(n, train))


def test_commit_probability_after_a_screen():
    # Beta(1, 1), 2 failures screened -> Beta(1, 3); 6 more all fail w.p. prod (3+i)/(4+i) = 3/9
    assert commit_probability(ONE, ONE, np.zeros(1), 2, 8)[0] == pytest.approx(2 / 3)
    assert commit_probability(ONE, ONE, np.full(1, 2.0), 2, 8)[0] == pytest.approx(2 / 3)  # mirrored
    assert commit_probability(ONE, ONE, np.ones(1), 2, 8)[0] == 1.0  # a mixed screen always commits
    # a believed-unsolvable query: after two more failures the rest will very likely fail too
    assert commit_probability(ONE, np.full(1, 200.0), np.zeros(1), 2, 4)[0] == pytest.approx(1 - 202 / 204)


def test_plan_group_without_and_with_screening():
    def plan(group, screen, threshold, **kw):
        return plan_group(ONE, ONE, group, costs(**kw), value="mixed", screen=screen, commit_threshold=threshold)

    # no screen: G rollouts, one prefill, G x P_mix(G) trained rows; Beta(1, 1): P_mix(2) = 1/3
    p = plan(2, 0, 0.5)
    assert (p.value[0], p.rollouts[0]) == pytest.approx((1 / 3, 2)) and p.flops[0] == pytest.approx(1 + 2 + 2 / 3 * 10)
    # screen 2 of 8 at threshold 0.5: degenerate screens (1/3 each side) still commit (P = 2/3): all of it,
    # with a second prefill
    p = plan(8, 2, 0.5)
    assert (p.value[0], p.rollouts[0]) == pytest.approx((7 / 9, 8))
    assert p.flops[0] == pytest.approx(2 + 8 + 8 * (7 / 9) * 10)
    # threshold 0.7: only mixed screens (P = 1/3) commit. s is uniform on 0..8; the first two of a mixed
    # group all fail w.p. sum_{s=1..7} C(8-s, 2) / C(8, 2) / 9 = 2/9 (and all pass, 2/9): those are lost,
    # so the group ends mixed exactly when its screen is: 7/9 - 4/9 = 1/3
    p = plan(8, 2, 0.7)
    assert (p.value[0], p.rollouts[0]) == pytest.approx((1 / 3, 4))
    assert p.flops[0] == pytest.approx((1 + 1 / 3) + 4 + 8 * (1 / 3) * 10)
    # training every row (skip_zero_adv=false): trained rows = rollouts
    p = plan_group(ONE, ONE, 8, GroupCosts(ONE, ONE, np.full(1, 10.0), trains_zero_advantage=True), value="mixed",
                   screen=2, commit_threshold=0.7)
    assert p.flops[0] == pytest.approx((1 + 1 / 3) + 4 + 4 * 10)
    # a group no larger than the screen is sampled whole
    assert plan(2, 4, 0.5).rollouts[0] == 2


def test_an_uncommitted_screen_loses_its_value_in_the_plan():
    # a hard query: most 2-rollout screens fail and are not finished, so planning with the full group's
    # value would overrate it several times
    a, b = np.array([0.5]), np.array([8.0])
    full = plan_group(a, b, 16, costs(), value="mixed")
    screened = plan_group(a, b, 16, costs(), value="mixed", screen=2, commit_threshold=0.5)
    assert screened.value[0] < 0.5 * full.value[0]
    # against simulation: draw p, then 16 outcomes in order; the first 2 are the screen
    rng = np.random.default_rng(0)
    p = rng.beta(0.5, 8.0, size=400_000)
    draws = rng.random((p.size, 16)) < p[:, None]
    fail, succeed = ~draws[:, :2].any(1), draws[:, :2].all(1)
    go_on_fail = commit_probability(a, b, np.zeros(1), 2, 16)[0] >= 0.5
    go_on_pass = commit_probability(a, b, np.full(1, 2.0), 2, 16)[0] >= 0.5
    finished = ~(fail | succeed) | (fail & go_on_fail) | (succeed & go_on_pass)
    mixed = draws.any(1) & ~draws.all(1)
    assert (mixed & finished).mean() == pytest.approx(screened.value[0], abs=0.003)
    assert (2 + 14 * finished).mean() == pytest.approx(screened.rollouts[0], rel=0.01)


def test_group_costs_follow_the_flops_formula():
    shape = ModelShape(n_layer=2, d_model=16, n_heads=2, n_kv_heads=2, head_dim=8, d_ff=32, vocab_size=20)
    c = group_costs(shape, np.array([5, 9]), np.array([3.0, 1.0]))
    assert c.prompt == pytest.approx(sequence_forward_flops(shape, np.array([5, 9])))
    assert c.rollout[0] == pytest.approx(sequence_forward_flops(shape, 8) - sequence_forward_flops(shape, 5))
    assert c.train[1] == pytest.approx(3 * sequence_forward_flops(shape, 10))


def test_knapsack_prefers_the_informative_query_and_keeps_the_budget():
    a, b = np.array([50.0, 1.0]), np.array([50.0, 100.0])  # p ~ 1/2 against p ~ 1/100
    for value in ("mixed", "advantage"):
        out = knapsack(a, b, costs(n=2), 4, sizes=(2, 4, 8), value=value)
        assert out.tolist() == [4, 0]
    wide = knapsack(a, b, costs(n=2), 64, sizes=(2, 4, 8), value="mixed")
    assert (wide > 0).all() and wide.sum() <= 64, "with room, both are taken"


def test_knapsack_jumps_over_sizes_when_value_per_rollout_grows():
    # pure rollout cost; the advantage mass per rollout grows with G at p = 1/2 (0.5, 0.81, 0.93, ...)
    a = b = np.full(1, 1000.0)
    c = GroupCosts(np.zeros(1), np.ones(1), np.zeros(1))
    mass = {g: plan_group(a, b, g, c, value="advantage").value[0] for g in (2, 4, 8)}
    assert mass[8] / 8 > mass[4] / 4 > mass[2] / 2
    assert knapsack(a, b, c, 8, sizes=(2, 4, 8), value="advantage")[0] == 8
    assert knapsack(a, b, c, 7, sizes=(2, 4, 8), value="advantage")[0] == 4
    assert knapsack(a, b, c, 1, sizes=(2, 4, 8), value="advantage")[0] == 0


def test_knapsack_gives_the_last_rollouts_to_the_best_remaining_jump():
    # P_mix saturates: two equal queries with 8 rollouts each get 4 + 4 rather than 8 + 0
    a = b = np.full(2, 1000.0)
    c = GroupCosts(np.zeros(2), np.ones(2), np.zeros(2))
    assert prob_mixed(a, b, 4)[0] * 2 > prob_mixed(a, b, 8)[0]
    assert knapsack(a, b, c, 8, sizes=(2, 4, 8), value="mixed").tolist() == [4, 4]


def test_knapsack_refuses_bad_sizes_and_values():
    with pytest.raises(ValueError, match=r"selection.rule.sizes=\[1, 4\]: every group needs at least 2 rollouts"):
        knapsack(ONE, ONE, costs(), 8, sizes=(1, 4))
    with pytest.raises(KeyError, match="known: advantage, mixed"):
        knapsack(ONE, ONE, costs(), 8, value="entropy")
    assert SELECTIONS.names() == ["knapsack"]


def test_knapsack_caps_the_full_sizes():
    # screened hard queries cost ~2 expected rollouts each but 8 at full size: the cap bounds the worst case
    a, b = np.full(20, 0.5), np.full(20, 8.0)
    loose = knapsack(a, b, costs(n=20), 32, sizes=(8,), value="mixed", screen=2, commit_threshold=0.9)
    capped = knapsack(a, b, costs(n=20), 32, sizes=(8,), value="mixed", screen=2, commit_threshold=0.9,
                      max_rollouts=40)
    assert loose.sum() > 40 and capped.sum() == 40


def test_the_run_prices_queries_by_their_own_or_the_mean_lengths():
    from hydra import compose, initialize_config_dir

    from sgpo.profiling.store import DifficultyProfile
    from sgpo.training import selection_costs

    profile = DifficultyProfile(["a", "b"], np.ones((2, 4), np.int8), np.array([4, 12]), np.array([[2] * 4, [6] * 4]),
                                np.zeros((2, 4), bool), {})
    conf = str(__import__("sgpo").ROOT_DIR / "conf")
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        own = selection_costs(compose(config_name="train", overrides=["method=sgpo", "selection.query_lengths=true"]),
                              profile, [], None)
        mean = selection_costs(compose(config_name="train", overrides=["method=sgpo"]), profile, [], None)
        vllm_like = selection_costs(compose(config_name="train", overrides=[
            "method=sgpo", "selection.query_lengths=true", "engine.prefix_sharing=false", "algo.skip_zero_adv=false"]),
            profile, [], None)
    assert own.train[1] > 2 * own.train[0] and own.prompt[1] > own.prompt[0]
    assert mean.train[0] == mean.train[1] == pytest.approx((own.train[0] + own.train[1]) / 2, rel=0.2)
    assert mean.prompt[0] == mean.prompt[1]
    assert (vllm_like.prompt == 0).all() and vllm_like.trains_zero_advantage and not own.trains_zero_advantage
    assert vllm_like.rollout == pytest.approx(own.rollout + own.prompt), "each sample prefills its own prompt"


def test_plan_group_charges_at_most_train_rows_per_group():
    # Beta(1, 1), G = 8, no screen: P_mix(8) = 7/9; trained rows 8 x 7/9 without a cap, 4 x 7/9 with
    # train_rows = 4; a group of 2 is under the cap. The value (the sampled group's) does not change.
    capped = GroupCosts(ONE, ONE, np.full(1, 10.0), train_rows=4)
    full, cut = (plan_group(ONE, ONE, 8, c, value="mixed") for c in (costs(), capped))
    assert full.flops[0] == pytest.approx(1 + 8 + 8 * 7 / 9 * 10)
    assert cut.flops[0] == pytest.approx(1 + 8 + 4 * 7 / 9 * 10) and cut.value[0] == full.value[0]
    assert plan_group(ONE, ONE, 2, capped, value="mixed").flops[0] == pytest.approx(1 + 2 + 2 / 3 * 10)
    assert capped.take(np.array([0])).train_rows == 4
    # trained zero-advantage rows are capped too: every finished group trains 4, an unfinished screen
    # of 2 its 2 (threshold 0.7: P(commit) = 1/3, as above)
    every = GroupCosts(ONE, ONE, np.full(1, 10.0), trains_zero_advantage=True, train_rows=4)
    assert plan_group(ONE, ONE, 8, every, value="mixed").flops[0] == pytest.approx(1 + 8 + 4 * 10)
    p = plan_group(ONE, ONE, 8, every, value="mixed", screen=2, commit_threshold=0.7)
    assert p.flops[0] == pytest.approx((1 + 1 / 3) + 4 + (4 / 3 + 2 * 2 / 3) * 10)
    # value=advantage: worth of the kept 4, not of the 8. s uniform on 0..8 keeps k = 0, 1, 2 x 5, 3, 4
    # successes; sum |A| of 4 rows with k successes is 2 sqrt(k (4 - k) 3 / 4): 3, 2 sqrt(3), 3
    p = plan_group(ONE, ONE, 8, capped, value="advantage")
    assert p.value[0] == pytest.approx((3 + 5 * 2 * np.sqrt(3) + 3) / 9)
