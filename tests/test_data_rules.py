"""The data policy's rules at their edges, by hand: defaults, bounds, exact error messages, dtypes,
seeding, and the batch sampler's bookkeeping (epochs, step counts, observations, digest, restore).

Written to pin every behaviour a mutation of sgpo/data/{filters,allocation,curriculum,sampler}.py
could change (``mutmut run``; mutmut-equivalent.md lists the mutants no test can tell apart).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from sgpo.data import ALLOCATIONS, CURRICULA, FILTERS
from sgpo.data.curriculum import Phase
from sgpo.data.sampler import CurriculumBatchSampler, SamplerState


def raises_exactly(exc, message):
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


# ---- filters -------------------------------------------------------------------------------------
def test_sgpo_filter_defaults_and_inclusive_bounds():
    p = np.array([0.75, 0.8, 0.1] + [0.0] * 10)
    keep = FILTERS.get("sgpo")(p, seed=0)  # trivial_threshold 0.75 (kept), keep_unsolvable 0.1 -> 1 of 10
    assert keep[:3].tolist() == [True, False, True] and keep[3:].sum() == 1 and keep.dtype == bool
    assert FILTERS.get("sgpo")(p, seed=0, trivial_threshold=0.0)[:3].tolist() == [False, False, False]
    assert FILTERS.get("sgpo")(p, seed=0, trivial_threshold=1.0)[:3].tolist() == [True, True, True]
    every = FILTERS.get("sgpo")(p, seed=3, keep_unsolvable=1.0)
    assert every[3:].all(), "keep_unsolvable=1 keeps every unsolvable query (drawn without replacement)"
    with raises_exactly(ValueError, "filter.keep_unsolvable=1.5 must be in [0, 1]"):
        FILTERS.get("sgpo")(p, seed=0, keep_unsolvable=1.5)
    with raises_exactly(ValueError, "filter.trivial_threshold=-0.1 must be in [0, 1]"):
        FILTERS.get("sgpo")(p, seed=0, trivial_threshold=-0.1)


def test_sgpo_filter_draws_the_kept_unsolvable_queries_from_its_seed():
    p = np.array([0.5] + [0.0] * 20)
    keep = FILTERS.get("sgpo")(p, seed=11, keep_unsolvable=0.5)
    want = np.random.default_rng(11).choice(np.arange(1, 21), size=10, replace=False)
    assert np.flatnonzero(keep).tolist() == [0, *sorted(want.tolist())]


def test_no_filter_and_solvable_only_return_boolean_masks():
    assert FILTERS.get("none")(np.array([0.0, 1.0]), 0).dtype == bool
    assert FILTERS.get("solvable_only")(np.array([0.0, 0.5]), 0).tolist() == [False, True]


# ---- allocation ----------------------------------------------------------------------------------
def test_allocation_defaults_bounds_and_integer_dtype():
    p = np.array([1.0, 1 / 3, 1 / 32, 0.0])
    pow2 = ALLOCATIONS.get("inverse_pow2")(p, k=8)  # g_min 2, g_max 8
    inv = ALLOCATIONS.get("inverse")(p, k=8)
    assert pow2.tolist() == [2, 2, 8, 8] and inv.tolist() == [2, 3, 8, 8]
    assert pow2.dtype.kind == "i" and inv.dtype.kind == "i"
    assert ALLOCATIONS.get("inverse")(p, k=8, g_max=16).tolist() == [2, 3, 16, 16]
    assert ALLOCATIONS.get("inverse_pow2")(p, k=8, g_max=16).tolist() == [2, 2, 16, 16]
    uniform = ALLOCATIONS.get("uniform")(p, k=8)
    assert uniform.tolist() == [8] * 4 and uniform.dtype.kind == "i"
    assert ALLOCATIONS.get("uniform")(p, k=8, group_size=4.0).dtype.kind == "i"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # p-hat = 0 never reaches a division
        ALLOCATIONS.get("inverse")(p, k=8)
        ALLOCATIONS.get("inverse_pow2")(p, k=8)
    with raises_exactly(ValueError, "allocation.g_max=3 must be >= allocation.g_min=4"):
        ALLOCATIONS.get("inverse")(p, k=8, g_min=4, g_max=3)


def test_budgeted_by_hand():
    """G = clip(round(s G_base), g_min, g_max) with mean(G) as close to the target as possible."""
    budgeted = ALLOCATIONS.get("budgeted")
    # defaults: base inverse (G_base = 2 for p = 1/2), mean 4, g_min 2, g_max 16: s = 2
    out = budgeted(np.array([0.5] * 4), k=8)
    assert out.tolist() == [4, 4, 4, 4] and out.dtype.kind == "i"
    assert budgeted(np.array([0.5]), k=8).tolist() == [4], "one query is rescaled too"
    assert budgeted(np.array([1 / 8]), k=8).tolist() == [4], "s = 1/2: scales down as well as up"
    # the target may be either bound: every group at g_max = 16, or at g_min = 2 (G_base 2 and 8)
    assert budgeted(np.array([0.5, 1 / 8]), k=8, mean_rollouts=16).tolist() == [16, 16]
    assert budgeted(np.array([0.5, 1 / 8]), k=8, mean_rollouts=2).tolist() == [2, 2]
    empty = budgeted(np.array([]), k=8)
    assert empty.tolist() == [] and empty.dtype.kind == "i"
    # G_base [2, 4], target 2.25: [2, 2] and [2, 3] are equally close; the tie goes to the smaller budget
    assert budgeted(np.array([0.5, 0.25]), k=8, mean_rollouts=2.25).tolist() == [2, 2]
    with raises_exactly(ValueError, "allocation.mean_rollouts=17 must be within [g_min, g_max]=[2, 16]"):
        budgeted(np.array([0.5]), k=8, mean_rollouts=17)
    with pytest.raises(ValueError, match="allocation.g_min=1"):  # the base rule's own parameters reach it
        budgeted(np.array([0.5]), k=8, base="uniform", group_size=1)


# ---- curricula -----------------------------------------------------------------------------------
def test_phased_keeps_own_group_sizes_when_asked_and_is_seeded():
    g = np.array([2, 4, 8, 8, 2, 8, 8, 8, 8])
    uns = [0, 0, 1, 1, 0, 1, 1, 1, 1]  # a 0/1 list is read as a mask
    own = CURRICULA.get("phased")(None, g, uns, seed=0, unsolvable_group="own")
    assert [p.name for p in own] == ["G=2", "G=4"]
    extra = np.random.default_rng(0).permutation([2, 3, 5, 6, 7, 8]).tolist()  # dealt round-robin in this order
    assert own[0].indices.tolist() == [0, 4, *extra[0::2]] and own[1].indices.tolist() == [1, *extra[1::2]]
    assert own[0].group_sizes.tolist() == [2, 2, 8, 8, 8] and own[1].group_sizes.tolist() == [4, 8, 8, 8]
    assert all(p.shuffle is True for p in own)
    with raises_exactly(ValueError, "curriculum.unsolvable_group='mine'; valid: phase, own"):
        CURRICULA.get("phased")(None, g, uns, seed=0, unsolvable_group="mine")


def test_phased_with_only_unsolvable_queries_buckets_them_by_their_own_sizes():
    phases = CURRICULA.get("phased")(None, np.array([8, 4, 8]), np.array([True, True, True]), seed=1)
    assert [p.name for p in phases] == ["G=4", "G=8"]
    assert sorted(np.concatenate([p.indices for p in phases]).tolist()) == [0, 1, 2]


WINDOWED = np.linspace(0.99, 0.01, 40)  # p-hat already in descending order: position = rank


@pytest.mark.parametrize("name, rank_of", [("sorted", lambda i: i), ("hard_first", lambda i: 39 - i)])
def test_sorted_curricula_shuffle_within_windows_of_32_by_default(name, rank_of):
    (phase,) = CURRICULA.get(name)(WINDOWED, np.arange(40) % 3 + 2, WINDOWED == 0, seed=5)
    assert phase.name == name and phase.shuffle is False and phase.indices.dtype.kind == "i"
    ranks = [rank_of(int(i)) for i in phase.indices]
    assert sorted(ranks[:32]) == list(range(32)) and sorted(ranks[32:]) == list(range(32, 40))
    assert ranks != list(range(40)), "shuffled within the windows"
    assert phase.group_sizes.tolist() == (np.arange(40) % 3 + 2)[phase.indices].tolist()
    (again,) = CURRICULA.get(name)(WINDOWED, np.arange(40) % 3 + 2, WINDOWED == 0, seed=5)
    assert again.indices.tolist() == phase.indices.tolist(), "seeded"
    (same,) = CURRICULA.get(name)(WINDOWED, np.arange(40) % 3 + 2, WINDOWED == 0, seed=5, window=32)
    assert same.indices.tolist() == phase.indices.tolist()


def test_sorted_window_by_hand():
    """window 2 on p-hat [0.9, 0.7, 0.5, 0.1]: the seeded permutation of each consecutive pair."""
    rng = np.random.default_rng(7)
    want = np.concatenate([rng.permutation([0, 1]), rng.permutation([2, 3])]).tolist()
    (phase,) = CURRICULA.get("sorted")(np.array([0.9, 0.7, 0.5, 0.1]), np.array([2, 2, 4, 8]), None, seed=7, window=2)
    assert phase.indices.tolist() == want
    (hard,) = CURRICULA.get("hard_first")(np.array([0.1, 0.5, 0.7, 0.9]), np.array([8, 4, 2, 2]), None, seed=7,
                                          window=2)
    assert hard.indices.tolist() == want and hard.group_sizes.tolist() == [[8, 4, 2, 2][i] for i in want]
    (empty,) = CURRICULA.get("sorted")(np.array([]), np.array([]), None, seed=0)
    assert empty.indices.tolist() == []
    with raises_exactly(ValueError, "curriculum.window=0 must be >= 1"):
        CURRICULA.get("sorted")(np.array([0.5]), np.array([2]), None, seed=0, window=0)


def test_sorted_keeps_ties_in_index_order():
    p = np.repeat([0.9, 0.5, 0.1], 40)[np.random.default_rng(0).permutation(120)]
    (phase,) = CURRICULA.get("sorted")(p, np.full(120, 2), None, seed=0, window=1)
    order = phase.indices
    for value in (0.9, 0.5, 0.1):
        assert (np.diff(order[p[order] == value]) > 0).all(), "a stable sort"


def test_random_curriculum_is_one_shuffled_phase_of_every_query():
    (phase,) = CURRICULA.get("random")(np.array([0.5, 0.2]), [2, 4], None, seed=0)
    assert (phase.name, phase.indices.tolist(), phase.group_sizes.tolist(), phase.shuffle) == ("random", [0, 1],
                                                                                              [2, 4], True)


# ---- the batch sampler ---------------------------------------------------------------------------
def two_phases(shuffle=True):
    return [Phase("A", np.arange(0, 4), np.full(4, 2), shuffle), Phase("B", np.arange(4, 6), np.full(2, 4), shuffle)]


def sampler(phases=None, budget=4, **kw):
    args = {"seed": 0, "phase_epochs": 1, "phase_steps": None, "plateau_window": None, "plateau_delta": 0.01,
            "cycles": 1, "observe_decay": 0.5, **kw}
    return CurriculumBatchSampler(phases if phases is not None else two_phases(), budget, **args)


def test_sampler_rejects_bad_setups_with_exact_messages():
    with raises_exactly(ValueError, "no queries left to train on after filtering: loosen the filter (filter=none) "
                                    "or check the profile"):
        sampler([Phase("A", np.arange(0), np.arange(0))])
    with raises_exactly(ValueError, "set at least one of data.phase_epochs, data.phase_steps, data.plateau_window"):
        sampler(phase_epochs=None)
    with raises_exactly(ValueError, "rank 2 outside world size 2"):
        sampler(rank=2, world_size=2)


def test_sampler_defaults_to_one_process_and_counts_steps():
    s = sampler()
    assert (s.rank, s.world_size, s.replanned) == (0, 1, False)
    assert "phases" not in s.state_dict(), "nothing re-planned: the plan is rebuilt from the config"
    steps = list(s)  # phase A: 4 queries of G=2, two per step; phase B: 2 queries of G=4, one per step
    assert [len(st) for st in steps] == [2, 2, 1, 1] and s.state.step == 4
    assert sorted(q for st in steps[:2] for q, _ in st) == [0, 1, 2, 3] and {q for (q, _), in steps[2:]} == {4, 5}


def test_every_epoch_covers_every_query_and_epochs_are_counted():
    s = sampler([Phase("A", np.arange(3), np.full(3, 2), False)], budget=4, phase_epochs=2)
    steps = list(s)
    assert steps == [[(0, 2), (1, 2)], [(2, 2)], [(0, 2), (1, 2)], [(2, 2)]], "in order (no shuffle), twice"
    assert (s.state.cycle, s.state.step) == (1, 4)


def test_observe_accumulates_and_replanning_decays_it():
    s = sampler(cycles=None, replan=lambda cycle, observed: two_phases())
    s.observe(3, 1.0, 2.0)
    s.observe(3, 2.0, 2.0)
    assert s.observed == {3: [3.0, 4.0]}
    while s.state.cycle == 0:
        s.next_step()
    assert s.observed == {3: [1.5, 2.0]} and s.replanned is True


def test_plan_digest_tracks_the_plan_position_and_observations():
    a, b = sampler(), sampler()
    assert a.plan_digest() == b.plan_digest() and len(a.plan_digest()) == 64
    a.next_step()
    assert a.plan_digest() != b.plan_digest()
    b.next_step()
    assert a.plan_digest() == b.plan_digest()
    b.observe(0, 1.0, 2.0)
    assert a.plan_digest() != b.plan_digest()
    narrow = sampler([Phase(p.name, p.indices.astype(np.int32), p.group_sizes.astype(np.int32)) for p in two_phases()])
    assert narrow.plan_digest() == sampler().plan_digest(), "the same plan in another integer width"
    renamed = sampler([Phase("Z", p.indices, p.group_sizes) for p in two_phases()])
    assert renamed.plan_digest() != sampler().plan_digest()
    other_sizes = sampler([Phase(p.name, p.indices, p.group_sizes * 0 + 2) for p in two_phases()])
    assert other_sizes.plan_digest() != sampler().plan_digest()
    other_queries = sampler([Phase(p.name, p.indices + 10, p.group_sizes) for p in two_phases()])
    assert other_queries.plan_digest() != sampler().plan_digest()


def test_restoring_a_replanned_sampler_keeps_its_plan_across_two_restores():
    s = sampler(cycles=None, replan=lambda cycle, observed: [Phase("C", np.array([5, 1]), np.array([4, 2]), False)])
    while s.state.cycle == 0:
        s.next_step()
    first = sampler(cycles=None)
    first.load_state_dict(s.state_dict())
    second = sampler(cycles=None)
    second.load_state_dict(first.state_dict())
    for restored in (first, second):
        (phase,) = restored.phases
        assert (phase.name, phase.indices.tolist(), phase.group_sizes.tolist(), phase.shuffle) == ("C", [5, 1],
                                                                                                  [4, 2], False)
        assert restored.replanned is True and restored.phase_name == "C"
    assert second.next_step() == s.next_step()


def test_the_plateau_window_survives_a_restore():
    s = sampler(phase_epochs=None, plateau_window=2)
    s.next_step()
    s.report_reward(0.5)
    t = sampler(phase_epochs=None, plateau_window=2)
    t.load_state_dict(s.state_dict())
    assert t.state.phase_rewards == [0.5] and t.state == s.state


def test_restoring_an_old_state_without_observations_or_rewards():
    s = sampler()
    s.load_state_dict({"cycle": 0, "phase": 1, "epoch": 0, "pos": 1, "step": 3, "phase_step": 1})
    assert s.observed == {} and s.state == SamplerState(0, 1, 0, 1, 3, 1, [])
    assert s.next_step() == [(int(s.phases[1].indices[s._order(1, 0, 0)[1]]), 4)], "the second query of phase B"
    assert s.next_step() is None
