"""PODS down-sampling rules (sgpo/algos/downsample.py) on hand-computed subsets."""

from __future__ import annotations

import itertools

import pytest
import torch

from sgpo.algos.downsample import DOWNSAMPLERS, max_variance, random_subset


def variance(values) -> float:
    v = torch.tensor(values, dtype=torch.float64)
    return float(((v - v.mean()) ** 2).mean())


def test_max_variance_keeps_the_lone_success_and_failures():
    rewards = torch.zeros(16)
    rewards[11] = 1.0
    kept = max_variance(rewards, 4, torch.Generator().manual_seed(0))
    assert len(kept) == 4 and 11 in kept.tolist()
    assert kept.tolist() == sorted(set(kept.tolist()))  # distinct positions, ascending
    assert float(rewards[kept].sum()) == 1.0


def test_max_variance_balances_binary_rewards():
    # 5 successes of 8, m = 4: two of each (variance 1/4); m = 5: 2 + 3 or 3 + 2 (variance 6/25: the
    # fewer successes win the tie); m = 6: three of each
    rewards = torch.tensor([1.0, 0, 1, 1, 0, 1, 0, 1])
    for m, successes in ((4, {2}), (5, {2}), (6, {3})):
        kept = max_variance(rewards, m, torch.Generator().manual_seed(1))
        assert int(rewards[kept].sum()) in successes
    # only 1 failure: it is always kept
    rewards = torch.tensor([1.0, 1, 1, 0, 1, 1])
    assert 3 in max_variance(rewards, 2, torch.Generator().manual_seed(2)).tolist()


def test_max_variance_is_the_best_subset_by_brute_force():
    gen = torch.Generator().manual_seed(3)
    for trial in range(20):
        n, m = 7, 2 + trial % 5
        rewards = torch.randint(0, 4, (n,), generator=gen).double() / 3  # graded rewards with ties
        kept = max_variance(rewards, m, gen)
        best = max(variance(rewards[list(c)].tolist()) for c in itertools.combinations(range(n), m))
        assert variance(rewards[kept].tolist()) == pytest.approx(best)


def test_equal_rewards_are_kept_uniformly_at_random():
    # one success among 8; which 3 failures join it must vary with the generator, not be the first ones
    rewards = torch.zeros(8)
    rewards[0] = 1.0
    seen = {tuple(max_variance(rewards, 4, torch.Generator().manual_seed(s)).tolist()) for s in range(30)}
    assert all(0 in kept for kept in seen) and len(seen) > 5


def test_random_subset_and_registry_and_bad_sizes():
    kept = random_subset(torch.zeros(10), 4, torch.Generator().manual_seed(0))
    assert len(set(kept.tolist())) == 4 and all(0 <= i < 10 for i in kept.tolist())
    assert DOWNSAMPLERS.names() == ["max_variance", "random"]
    for rule in (max_variance, random_subset):
        with pytest.raises(ValueError, match="m = 5 of n = 4"):
            rule(torch.zeros(4), 5)


def test_the_step_trains_on_the_kept_rows_with_their_own_advantages():
    """SGPOModule._pack with algo.train_rows = 4: a group of 8 with one success keeps that success and
    3 failures, whose GRPO advantages are those of [1, 0, 0, 0] (mean 1/4, sample std 1/2: +1.5 and
    -0.5); a group of 2 is under the cap and kept whole; the dropped rollouts are counted."""
    from types import SimpleNamespace

    from sgpo.engines.base import Completion
    from sgpo.module import SGPOModule
    from sgpo.rollouts import CollectedGroups

    def completion(i):
        return Completion((5, 6, i + 7), f"c{i}", "stop")

    first = [0.0] * 8
    first[5] = 1.0
    groups = CollectedGroups(specs=[(0, 8), (1, 2)], completions=[[completion(i) for i in range(8)],
                                                                   [completion(20), completion(21)]],
                             rewards=[first, [1.0, 0.0]], generation_batches=1, rollouts=10)
    module = SimpleNamespace(train_rows=4, downsample=max_variance,
                             prompt_ids=[[1, 2], [3]], normalize_std=True, tokenizer=SimpleNamespace(pad_token_id=0))
    batch, lengths, metrics = SGPOModule._pack(module, groups, seed=7)
    assert len(batch) == 6 and lengths[:4] == [5, 5, 5, 5] and lengths[4:] == [4, 4]
    assert batch.rewards.tolist()[:4].count(1.0) == 1
    adv = dict(zip(batch.rewards.tolist()[:4], batch.advantages.tolist()[:4]))
    assert adv[1.0] == pytest.approx(1.5, abs=1e-5) and adv[0.0] == pytest.approx(-0.5, abs=1e-5)
    assert batch.advantages.tolist()[4:] == pytest.approx([0.7071, -0.7071], abs=1e-3)
    assert 10 - len(batch) == 4 and metrics["num_groups"] == 2  # the step counts the 4 cut from the batch's size
    module.train_rows = None  # off: every rollout is packed
    assert len(SGPOModule._pack(module, groups, seed=7)[0]) == 10


def test_the_plans_kept_successes_are_what_max_variance_keeps():
    """sgpo.data.selection.kept_successes, which prices a down-sampled group in the knapsack, against
    the rule itself on every binary group up to n = 40 (odd m included: the floor of m / 2)."""
    from sgpo.data.selection import kept_successes

    gen = torch.Generator().manual_seed(4)
    for n in range(2, 41):
        for m in {2, 3, 4, n // 2 + 1, n - 1} - {1}:
            if not 2 <= m <= n:
                continue
            expected = kept_successes(n, m)
            for s in range(n + 1):
                rewards = torch.zeros(n)
                rewards[torch.randperm(n, generator=gen)[:s]] = 1.0
                assert int(rewards[max_variance(rewards, m, gen)].sum()) == expected[s], (n, m, s)
