"""Selection rules: this step's queries and group sizes from the posterior, under a rollout budget.

A rule has the signature ``fn(a, b, costs, budget, *, sizes, value, screen, commit_threshold,
normalize_std, max_rollouts) -> np.ndarray[int] [C]``: for C candidate queries with Beta(a, b)
posteriors (sgpo/data/posterior.py) and their ``GroupCosts``, a group size per candidate, 0 for
candidates not taken this step. The taken groups' *expected* rollouts sum to at most ``budget``
and their full sizes to at most ``max_rollouts`` (with screening a step's realised rollouts lie
between the screens' and the full sizes', so the budget holds on average and the cap always).

Screen, then commit (``screen`` > 0): a group of G > screen first samples ``screen`` rollouts; the
other G - screen follow only if the screen is mixed or ``commit_probability`` says the rest will
likely make it mixed. The rules plan with the expected value, rollouts and FLOPs of that procedure:
an uncommitted degenerate screen is worth nothing.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from math import comb

import numpy as np

from sgpo.data.posterior import advantage_mass, beta_binomial_pmf, prob_all_fail
from sgpo.flops import ModelShape, sequence_forward_flops, sequence_train_flops
from sgpo.registry import Registry

SELECTIONS: Registry = Registry("selection rule")
VALUES: Registry = Registry("selection value")


def mixed_outcomes(n: int, normalize_std: bool = True) -> np.ndarray:
    """1 for s = 1..n-1 successes of n, 0 for s in {0, n}: the value ``mixed`` (P(the group is mixed)), [n + 1]."""
    w = np.ones(n + 1)
    w[0] = w[n] = 0.0
    return w


# A value is its worth per outcome: fn(n, normalize_std) -> [n + 1] over s = 0..n successes.
VALUES.register("mixed")(mixed_outcomes)
VALUES.register("advantage")(advantage_mass)  # sum |A| as the trainer computes it


@dataclass(frozen=True)
class GroupCosts:
    """Forward FLOPs per candidate, [C] each: ``prompt`` the prompt's prefill (paid once per
    generate call; 0 for an engine that prefills every sample, whose ``rollout`` then holds it),
    ``rollout`` one completion beyond the prompt, ``train`` one trained row (prompt + completion,
    forward and backward). ``trains_zero_advantage``: rows of degenerate groups are trained too
    (algo.skip_zero_adv=false). ``train_rows``: at most this many rows of a group are trained
    (algo.train_rows, PODS down-sampling; None: all)."""

    prompt: np.ndarray
    rollout: np.ndarray
    train: np.ndarray
    trains_zero_advantage: bool = False
    train_rows: int | None = None

    def take(self, idx: np.ndarray) -> GroupCosts:
        return GroupCosts(self.prompt[idx], self.rollout[idx], self.train[idx], self.trains_zero_advantage,
                          self.train_rows)


def group_costs(shape: ModelShape, prompt_tokens: np.ndarray, completion_tokens: np.ndarray, *,
                shares_prompt: bool = True, trains_zero_advantage: bool = False,
                train_rows: int | None = None) -> GroupCosts:
    """``GroupCosts`` [Q] from prompt lengths [Q] and expected completion lengths [Q] (sgpo.flops):
    prompt C_seq(p) (0 without prompt sharing); rollout C_seq(p + c) - C_seq(p) (C_seq(p + c)
    without); train 3 C_seq(p + c)."""
    p = np.asarray(prompt_tokens, dtype=float)
    total = p + np.asarray(completion_tokens, dtype=float)
    full = np.asarray(sequence_forward_flops(shape, total), dtype=float)
    prompt = np.asarray(sequence_forward_flops(shape, p), dtype=float) if shares_prompt else np.zeros_like(p)
    return GroupCosts(prompt, full - prompt, np.asarray(sequence_train_flops(shape, total), dtype=float),
                      trains_zero_advantage, train_rows)


def commit_probability(a: np.ndarray, b: np.ndarray, screen_successes: np.ndarray, screen: int,
                       group: int) -> np.ndarray:
    """P(the group of ``group`` turns out mixed | its first ``screen`` rollouts), [C].

    1 for a mixed screen. After a screen of all failures (successes = 0) the posterior is
    Beta(a, b + screen) and the rest is mixed-making when it holds a success:
    1 - prod_{i < group - screen} (b + screen + i) / (a + b + screen + i); all successes mirror it.
    """
    a, b, s = (np.asarray(x, dtype=float) for x in (a, b, screen_successes))
    rest = group - screen
    all_fail = prob_all_fail(a, b + screen, rest)  # the rest fails too, after a failed screen
    all_pass = prob_all_fail(b, a + screen, rest)  # the rest succeeds too, after a passed screen
    return np.where(s <= 0, 1.0 - all_fail, np.where(s >= screen, 1.0 - all_pass, 1.0))


@dataclass(frozen=True)
class GroupPlan:
    """What asking for a group of one size is expected to give, [C] each."""

    value: np.ndarray     # E[worth of the group as trained] (0 for an uncommitted screen)
    rollouts: np.ndarray  # E[rollouts generated]
    flops: np.ndarray     # E[FLOPs: prefills + rollouts + trained rows]


def kept_successes(n: int, m: int) -> np.ndarray:
    """[n + 1]: the successes among the m rows max_variance keeps of a binary group with s = 0..n
    successes: as balanced as the group allows, min(s, m // 2), or m - (n - s) when fewer than
    m - m // 2 failures exist (sgpo.algos.downsample.max_variance)."""
    s = np.arange(n + 1)
    k = np.minimum(s, m // 2)
    return np.where(n - s < m - k, m - (n - s), k)


def plan_group(a: np.ndarray, b: np.ndarray, group: int, costs: GroupCosts, *, value: str = "advantage",
               screen: int = 0, commit_threshold: float = 0.5, normalize_std: bool = True) -> GroupPlan:
    """Expected value, rollouts and FLOPs of asking for ``group`` rollouts of each candidate.

    With s ~ BetaBinomial(group, a, b) successes and the outcome worth w(s) (the registered value):
    V = E[w(s)]. With screening (group > screen > 0) the order of the group's rollouts is
    exchangeable, so its first ``screen`` all fail with probability C(group - s, screen) /
    C(group, screen) given s; where the commit rule does not finish such a screen, those outcomes
    are worth 0, and likewise for a screen of all successes (C(s, screen) / C(group, screen)).
    Rollouts: screen + P(commit) (group - screen), P(commit) = P(screen mixed) + the degenerate
    screens' probabilities where the rule commits; a commit prefills the prompt again. Trained
    rows: group x P(mixed and finished), or every rollout when zero-advantage rows are trained.
    With ``costs.train_rows`` = m (PODS), a group of n rollouts trains min(n, m) of them and is
    worth what those are worth: w_m(k(s)), k(s) the successes max_variance keeps of s
    (kept_successes); an unfinished screen trains min(screen, m) rows where zero-advantage rows
    are trained.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    pmf = beta_binomial_pmf(a, b, group)  # [C, group + 1]
    cap = group if costs.train_rows is None else costs.train_rows  # most rows one group trains
    if group > cap:
        worth = VALUES.get(value)(cap, normalize_std)[kept_successes(group, cap)]
    else:
        worth = VALUES.get(value)(group, normalize_std)
    mixed = mixed_outcomes(group)
    v, p_mixed = pmf @ worth, pmf @ mixed
    if screen <= 0 or group <= screen:
        rollouts, prefills = np.full(a.size, float(group)), np.ones(a.size)
    else:
        s = np.arange(group + 1)
        first = {0: np.array([comb(group - k, screen) for k in s], float) / comb(group, screen),
                 screen: np.array([comb(k, screen) for k in s], float) / comb(group, screen)}
        p_commit = 1.0 - prob_all_fail(a, b, screen) - prob_all_fail(b, a, screen)  # the screen is mixed
        for outcome, p_outcome in ((0, prob_all_fail(a, b, screen)), (screen, prob_all_fail(b, a, screen))):
            commits = commit_probability(a, b, np.full(a.size, outcome), screen, group) >= commit_threshold
            p_commit = p_commit + np.where(commits, p_outcome, 0.0)
            v = v - np.where(commits, 0.0, pmf @ (worth * first[outcome]))
            p_mixed = p_mixed - np.where(commits, 0.0, pmf @ (mixed * first[outcome]))
        rollouts, prefills = screen + p_commit * (group - screen), 1.0 + p_commit
    rows = min(group, cap)  # trained rows of a finished group
    if not costs.trains_zero_advantage:
        trained = rows * p_mixed
    elif screen <= 0 or group <= screen:
        trained = np.full(a.size, float(rows))
    else:  # a finished group trains `rows`; an unfinished screen its own rollouts, capped alike
        trained = p_commit * rows + (1.0 - p_commit) * min(screen, cap)
    return GroupPlan(v, rollouts, costs.prompt * prefills + rollouts * costs.rollout + trained * costs.train)


def knapsack(a: np.ndarray, b: np.ndarray, costs: GroupCosts, budget: float, *, sizes: Sequence[int] = (2, 4, 8, 16),
             value: str = "advantage", screen: int = 0, commit_threshold: float = 0.5, normalize_std: bool = True,
             max_rollouts: float | None = None) -> np.ndarray:
    """Greedy value per FLOP: repeatedly give the candidate whose jump to a larger size has the best
    (V(G') - V(G)) / (F(G') - F(G)) that jump, while the expected rollouts fit ``budget`` and the
    full sizes ``max_rollouts`` (None: no cap beyond the budget's).

    V, F: ``plan_group``'s expected value and FLOPs. Jumps may skip sizes, because V per rollout
    can grow with G (the advantage mass does), where a one-size-at-a-time greedy would stop early.
    Returns G [C] (0: not taken).
    """
    sizes = sorted({int(s) for s in sizes})
    if not sizes or sizes[0] < 2:
        raise ValueError(f"selection.rule.sizes={sizes}: every group needs at least 2 rollouts")
    VALUES.get(value)  # an unknown value fails here, listing the known ones
    a, b = np.asarray(a, float), np.asarray(b, float)
    levels = [0, *sizes]
    vals, flops, rolls = (np.zeros((len(levels), a.size)) for _ in range(3))
    for j, g in enumerate(sizes, start=1):
        plan = plan_group(a, b, g, costs, value=value, screen=screen, commit_threshold=commit_threshold,
                          normalize_std=normalize_std)
        vals[j], rolls[j], flops[j] = plan.value, plan.rollouts, plan.flops
    level = np.zeros(a.size, dtype=int)
    left = float(budget)
    room = float("inf") if max_rollouts is None else float(max_rollouts)

    def fits(c: int, j: int) -> bool:
        return rolls[j, c] - rolls[level[c], c] <= left + 1e-9 and levels[j] - levels[level[c]] <= room + 1e-9

    def best_jump(c: int) -> tuple[float, int] | None:
        cur = level[c]
        best = None
        for j in range(cur + 1, len(levels)):
            if not fits(c, j):
                continue
            ratio = (vals[j, c] - vals[cur, c]) / max(flops[j, c] - flops[cur, c], 1e-30)
            if ratio > 0 and (best is None or ratio > best[0]):
                best = (ratio, j)
        return best

    heap = []
    for c in range(a.size):
        jump = best_jump(c)
        if jump is not None:
            heap.append((-jump[0], c, jump[1]))
    heapq.heapify(heap)
    while heap:
        _, c, j = heapq.heappop(heap)
        if not fits(c, j):  # the budget shrank since this jump was priced: price it again
            jump = best_jump(c)
            if jump is not None:
                heapq.heappush(heap, (-jump[0], c, jump[1]))
            continue
        left -= rolls[j, c] - rolls[level[c], c]
        room -= levels[j] - levels[level[c]]
        level[c] = j
        jump = best_jump(c)
        if jump is not None:
            heapq.heappush(heap, (-jump[0], c, jump[1]))
    return np.asarray(levels)[level]


# Registered here rather than with the decorator: mutation testing (mutmut) leaves decorated functions alone.
SELECTIONS.register("knapsack")(knapsack)
