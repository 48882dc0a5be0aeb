"""Filters, allocation rules, curricula and the batch sampler on hand-made p-hat arrays."""

import numpy as np
import pytest

from sgpo.data import ALLOCATIONS, CURRICULA, FILTERS
from sgpo.data.curriculum import Phase
from sgpo.data.sampler import CurriculumBatchSampler

P = np.array([1.0, 7 / 8, 6 / 8, 3 / 8, 2 / 8, 1 / 8, 0.0, 0.0, 0.0, 0.0])


def test_sgpo_filter_drops_trivial_and_keeps_share_of_unsolvable():
    keep = FILTERS.get("sgpo")(P, seed=0, trivial_threshold=0.75, keep_unsolvable=0.5)
    assert keep[:6].tolist() == [False, False, True, True, True, True]
    assert keep[6:].sum() == 2  # round(0.5 * 4)
    again = FILTERS.get("sgpo")(P, seed=0, trivial_threshold=0.75, keep_unsolvable=0.5)
    assert (keep == again).all(), "seeded"
    assert FILTERS.get("sgpo")(P, seed=0, keep_unsolvable=0.0)[6:].sum() == 0
    with pytest.raises(ValueError, match="filter.trivial_threshold"):
        FILTERS.get("sgpo")(P, seed=0, trivial_threshold=1.5)


def test_other_filters():
    assert FILTERS.get("solvable_only")(P, 0).tolist() == [True] * 6 + [False] * 4
    assert FILTERS.get("none")(P, 0).all()
    with pytest.raises(KeyError, match="none, sgpo, solvable_only"):
        FILTERS.get("foo")


def test_inverse_pow2_matches_paper_buckets_for_k8():
    g = ALLOCATIONS.get("inverse_pow2")(np.array([1.0, 6 / 8, 3 / 8, 2 / 8, 1 / 8, 0.0]), k=8)
    assert g.tolist() == [2, 2, 2, 4, 8, 8]
    g16 = ALLOCATIONS.get("inverse_pow2")(np.array([1 / 16, 3 / 16]), k=16, g_max=16)
    assert g16.tolist() == [16, 4]


def test_inverse_and_uniform():
    g = ALLOCATIONS.get("inverse")(np.array([1.0, 6 / 8, 3 / 8, 2 / 8, 1 / 8, 0.0]), k=8, g_min=2, g_max=8)
    assert g.tolist() == [2, 2, 3, 4, 8, 8]
    assert ALLOCATIONS.get("uniform")(P, k=8, group_size=8).tolist() == [8] * 10
    with pytest.raises(ValueError, match="g_min=1"):
        ALLOCATIONS.get("inverse")(P, k=8, g_min=1)


def test_budgeted_rescales_to_target_mean():
    p = np.linspace(0.05, 0.75, 200)
    g = ALLOCATIONS.get("budgeted")(p, k=8, base="inverse", mean_rollouts=6.0, g_min=2, g_max=16)
    assert abs(g.mean() - 6.0) < 0.25
    base = ALLOCATIONS.get("inverse")(p, k=8)
    assert np.all(np.diff(g[np.argsort(base)]) >= 0), "keeps the base rule's ordering"


def test_phased_curriculum_easy_to_hard_with_unsolvable_in_every_phase():
    g = np.array([2, 2, 4, 8, 8, 8, 8, 8])
    uns = np.array([False, False, False, False, True, True, True, False])
    phases = CURRICULA.get("phased")(P[:8], g, uns, seed=0)
    assert [p.name for p in phases] == ["G=2", "G=4", "G=8"]
    all_idx = np.concatenate([p.indices for p in phases])
    assert sorted(all_idx.tolist()) == list(range(8)), "every query exactly once"
    for p in phases:
        assert any(uns[i] for i in p.indices), f"{p.name} has no unsolvable query"
        bucket = int(p.name[2:])
        assert (p.group_sizes == bucket).all(), "unsolvable take the phase's G"


def test_sorted_random_hard_first():
    p = np.array([0.1, 0.9, 0.5, 0.7])
    g = np.full(4, 2)
    (s,) = CURRICULA.get("sorted")(p, g, p == 0, seed=0, window=1)
    assert s.indices.tolist() == [1, 3, 2, 0]
    (h,) = CURRICULA.get("hard_first")(p, g, p == 0, seed=0, window=1)
    assert h.indices.tolist() == [0, 2, 3, 1]
    (r,) = CURRICULA.get("random")(p, g, p == 0, seed=0)
    assert r.shuffle and sorted(r.indices.tolist()) == [0, 1, 2, 3]


def phases():
    return [Phase("G=2", np.arange(0, 6), np.full(6, 2)), Phase("G=4", np.arange(6, 10), np.full(4, 4))]


def drain(sampler, n=100):
    out = []
    for _ in range(n):
        step = sampler.next_step()
        if step is None:
            break
        out.append(step)
    return out


SAMPLER_DEFAULTS = {"seed": 0, "phase_epochs": 1, "phase_steps": None, "plateau_window": None, "plateau_delta": 0.01,
                    "cycles": 1, "observe_decay": 0.5}  # conf/train.yaml's data section, but cycles=1


def make_sampler(phase_list, rollouts_per_step, **overrides):
    return CurriculumBatchSampler(phase_list, rollouts_per_step, **{**SAMPLER_DEFAULTS, **overrides})


def test_sampler_packs_under_budget_and_walks_phases():
    s = make_sampler(phases(), rollouts_per_step=8, seed=0, phase_epochs=1, cycles=1)
    steps = drain(s)
    assert all(sum(g for _, g in st) <= 8 for st in steps)
    flat = [i for st in steps for i, _ in st]
    assert sorted(flat) == list(range(10)), "one epoch per phase: every query once"
    assert {i for i, _ in steps[0]} <= set(range(6)), "G=2 phase first"
    assert [len(st) for st in steps] == [4, 2, 2, 2]


def test_sampler_deterministic_and_resumable():
    a = make_sampler(phases(), 8, seed=3, phase_epochs=2, cycles=2)
    full = drain(a)
    b = make_sampler(phases(), 8, seed=3, phase_epochs=2, cycles=2)
    head = drain(b, 3)
    state = b.state_dict()
    c = make_sampler(phases(), 8, seed=3, phase_epochs=2, cycles=2)
    c.load_state_dict(state)
    assert head + drain(c) == full
    d = make_sampler(phases(), 8, seed=4, phase_epochs=2, cycles=2)
    assert drain(d) != full


def test_sampler_phase_steps_plateau_and_ddp_shards():
    s = make_sampler(phases(), 8, seed=0, phase_epochs=None, phase_steps=1, cycles=1)
    assert len(drain(s)) == 2
    p = make_sampler(phases(), 4, seed=0, phase_epochs=None, plateau_window=2, cycles=1)
    for _ in range(4):
        p.next_step()
        p.report_reward(0.5)  # flat reward: plateau after 2 windows
    assert p.state.phase == 0
    p.next_step()
    assert p.state.phase == 1
    r0 = make_sampler(phases(), 8, seed=0, rank=0, world_size=2)
    r1 = make_sampler(phases(), 8, seed=0, rank=1, world_size=2)
    g = make_sampler(phases(), 8, seed=0)
    for _ in range(3):
        full = g.next_step()
        assert sorted(r0.local(r0.next_step()) + r1.local(r1.next_step())) == sorted(full)


def test_sampler_rejects_budget_below_largest_group():
    with pytest.raises(ValueError, match="data.rollouts_per_step=3 is smaller than the largest group"):
        make_sampler(phases(), 3)


def test_sampler_replans_each_cycle_from_observed_rollouts_and_restores():
    calls = []

    def replan(cycle, observed):
        calls.append((cycle, {q: list(v) for q, v in observed.items()}))
        return [Phase("G=4", np.arange(6, 8), np.full(2, 4))]  # e.g. easy queries became trivial

    s = make_sampler(phases(), 8, seed=0, cycles=None, replan=replan, observe_decay=0.5)
    for _ in range(4):  # the first cycle: 4 steps over both phases
        for q, _g in s.next_step():
            s.observe(q, 1.0, 2.0)
    assert not calls
    step = s.next_step()  # starts cycle 1: replanned
    assert calls and calls[0][0] == 1 and calls[0][1][0] == [1.0, 2.0]
    assert {q for q, _ in step} <= {6, 7}
    assert s.observed[0] == [0.5, 1.0], "older evidence decays"
    state = s.state_dict()
    t = make_sampler(phases(), 8, seed=0, cycles=None, replan=replan)
    t.load_state_dict(state)
    assert [p.indices.tolist() for p in t.phases] == [[6, 7]] and t.next_step() == s.next_step()


def test_datamodule_replan_reestimates_p_hat():
    from sgpo.data.datamodule import ProfiledDataModule
    from sgpo.profiling.store import DifficultyProfile
    from sgpo.tasks.base import Query

    outcomes = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 0]], dtype=np.int8)
    profile = DifficultyProfile([f"q{i}" for i in range(4)], outcomes, np.ones(4, int), np.ones((4, 4), int),
                                np.zeros((4, 4), bool))
    queries = [Query(f"q{i}", "p", "1") for i in range(4)]
    dm = ProfiledDataModule(profile, queries, {"name": "sgpo", "keep_unsolvable": 0.0},
                            {"name": "inverse_pow2"}, {"name": "phased"},
                            {**SAMPLER_DEFAULTS, "rollouts_per_step": 8, "refresh_p_hat": True,
                             "refresh_prior_weight": 0.5, "refresh_decay": 0.5}, seed=0)
    assert dm.keep.tolist() == [True, True, False, True]
    # q0 (p=0.5) solved 8/8 in training: (8 + 2 * 0.5) / (8 + 2) = 0.9 -> now trivial, dropped
    phases = dm.replan(1, {0: [8.0, 8.0]})
    assert 0 not in np.concatenate([p.indices for p in phases]).tolist()
    assert dm.current_p_hat[0] == pytest.approx(0.9)


def test_plateau_rule_keeps_a_phase_going_while_the_reward_rises():
    """window 2, delta 0.25: the phase ends only once the mean of the last 2 rewards beats the 2 before by
    less than delta (an improvement of exactly delta keeps it going)."""
    s = make_sampler(phases(), 4, phase_epochs=None, plateau_window=2, plateau_delta=0.25, cycles=1)
    rewards = [0.0, 0.0, 0.25, 0.25,  # +0.25 over the window before: keep going
               0.5, 0.75,             # means 0.25 -> 0.625: keep going
               1.0, 1.0]              # 0.625 -> 1.0: keep going
    for r in rewards:
        s.next_step()
        s.report_reward(r)
        assert s.state.phase == 0, r
    s.next_step()  # the window rule reads [0.5, 0.75] vs [1.0, 1.0]: still rising, phase 0 goes on
    assert s.state.phase == 0 and s.state.phase_step == 9
    s.report_reward(1.0)
    s.next_step()  # last 2: [1.0, 1.0] vs [1.0, 1.0] -> +0 < 0.25: the phase ends
    assert s.state.phase == 1 and s.state.phase_step == 1 and s.state.phase_rewards == []
    assert s.phase_name == "G=4"


def test_plateau_rule_waits_for_two_full_windows():
    s = make_sampler(phases(), 4, phase_epochs=None, plateau_window=3, plateau_delta=0.5, cycles=1)
    for _ in range(5):
        s.next_step()
        s.report_reward(0.0)  # flat, but 5 < 2 x 3 rewards: too few to judge
    s.next_step()
    assert s.state.phase == 0
    s.report_reward(0.0)
    s.next_step()
    assert s.state.phase == 1
