"""Down-sampling a group's rollouts before training (PODS, arXiv 2504.13818): sample n, train on m.

Training a row costs several times what sampling it does (forward + backward over prompt and
completion, against one decode), so a group can be sampled large, which makes mixed rewards more
likely and p better known, and trained small. A rule picks which m of the n rollouts are trained
on; the advantages are then computed on those m alone, as GRPO would on a group of m.

A rule: ``fn(rewards, m, generator) -> indices``: rewards [n] float, m <= n; returns the kept
positions [m] (long, ascending). Pure tensor functions, registered by name in ``DOWNSAMPLERS``.
"""

from __future__ import annotations

import torch

from sgpo.registry import Registry

DOWNSAMPLERS = Registry("downsample rule")


@DOWNSAMPLERS.register("max_variance")
def max_variance(rewards: torch.Tensor, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The m rollouts whose rewards have the largest (population) variance.

    A subset of maximal variance is always the i largest and the m - i smallest rewards for some i
    in 0..m (shown in the PODS paper), so with the rewards sorted, r_(1) <= ... <= r_(n), every i
    is tried: {r_(1..m-i)} + {r_(n-i+1..n)} has variance E[r^2] - E[r]^2 from prefix sums; of equal
    variances (e.g. {0, 0, 2} and {0, 2, 2}) the smallest i wins. Rollouts with equal rewards are
    interchangeable for the variance, so the sort runs on a random permutation: which of them are
    kept is uniform (given ``generator``). For binary rewards with s successes it keeps
    min(s, m // 2) successes, more only when fewer than m - m // 2 failures exist; e.g. s = 1 of
    n = 16 and m = 4 keeps the success and 3 failures.
    """
    n = _checked_size(rewards, m)
    perm = torch.randperm(n, generator=generator)
    ranked = torch.sort(rewards.to(torch.float64)[perm], stable=True)
    order, s = perm[ranked.indices], ranked.values

    def prefix(x: torch.Tensor) -> torch.Tensor:  # [n + 1]: sums of the first 0..n entries
        return torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(x, 0)])

    low1, low2 = prefix(s), prefix(s * s)                     # over the k smallest
    high1, high2 = prefix(s.flip(0)), prefix((s * s).flip(0))  # over the k largest
    i = torch.arange(m + 1)
    total1, total2 = low1[m - i] + high1[i], low2[m - i] + high2[i]
    # m^2 x variance, exact for integer rewards (so equal subsets tie exactly); argmax: the first maximum
    best = int(torch.argmax(m * total2 - total1 * total1))
    kept = torch.cat([order[: m - best], order[n - best:]])
    return torch.sort(kept).values


@DOWNSAMPLERS.register("random")
def random_subset(rewards: torch.Tensor, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """m rollouts drawn uniformly without replacement (the ablation of max_variance: same training
    cost, no choice by reward)."""
    n = _checked_size(rewards, m)
    return torch.sort(torch.randperm(n, generator=generator)[:m]).values


def _checked_size(rewards: torch.Tensor, m: int) -> int:
    """n, the group's size, once m is known to be in [1, n]."""
    n = rewards.numel()
    if not 1 <= m <= n:
        raise ValueError(f"down-sampling to m = {m} of n = {n} rollouts: m must be in [1, n]")
    return n
