"""Curricula: from p-hat [Q] and group sizes [Q] to an ordered list of phases of query indices.

Every curriculum has the signature ``fn(p_hat, group_sizes, unsolvable, seed, **params) ->
list[Phase]``. A phase is a set of queries trained together for a while (the batch sampler
decides how long: epochs, steps or a reward plateau) before the next phase starts. Orders
inside a phase are re-shuffled each epoch only where ``shuffle`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgpo.registry import Registry

CURRICULA: Registry = Registry("curriculum")


@dataclass
class Phase:
    """indices: query positions [n] in training order; group_sizes: G per query [n]."""

    name: str
    indices: np.ndarray
    group_sizes: np.ndarray
    shuffle: bool = True


def phased(p_hat, group_sizes, unsolvable, seed: int, unsolvable_group: str = "phase") -> list[Phase]:
    """Easy to hard by group-size bucket (G=2, then 4, then 8, ...).

    The kept unsolvable queries (``unsolvable`` mask) are dealt round-robin, in a seeded random
    order, into every phase, and take that phase's group size (``unsolvable_group="phase"``,
    the paper's choice) or keep their own (``"own"``).
    """
    if unsolvable_group not in ("phase", "own"):
        raise ValueError(f"curriculum.unsolvable_group={unsolvable_group!r}; valid: phase, own")
    g = np.asarray(group_sizes)
    uns = np.asarray(unsolvable, dtype=bool)
    rng = np.random.default_rng(seed)
    buckets = sorted(set(g[~uns].tolist())) or sorted(set(g.tolist()))
    extra = rng.permutation(np.flatnonzero(uns))
    phases = []
    for i, bucket in enumerate(buckets):
        own = np.flatnonzero((g == bucket) & ~uns)
        mixed = extra[i :: len(buckets)]
        idx = np.concatenate([own, mixed]).astype(int)
        sizes = g[idx].copy()
        if unsolvable_group == "phase":
            sizes[len(own):] = bucket
        phases.append(Phase(f"G={bucket}", idx, sizes))
    return phases


def sorted_by_success(p_hat, group_sizes, unsolvable, seed: int, window: int = 32) -> list[Phase]:
    """One phase, p-hat descending (easy first), shuffled within consecutive windows of ``window``."""
    if window < 1:
        raise ValueError(f"curriculum.window={window} must be >= 1")
    rng = np.random.default_rng(seed)
    order = np.argsort(-np.asarray(p_hat, dtype=float), kind="stable")
    order = np.concatenate([rng.permutation(order[i:i + window]) for i in range(0, len(order), window)] or [order])
    return [Phase("sorted", order.astype(int), np.asarray(group_sizes)[order], shuffle=False)]


def hard_first(p_hat, group_sizes, unsolvable, seed: int, window: int = 32) -> list[Phase]:
    """One phase, p-hat ascending (hard first), shuffled within windows: the anti-curriculum."""
    (phase,) = sorted_by_success(-np.asarray(p_hat, dtype=float), group_sizes, unsolvable, seed, window)
    return [Phase("hard_first", phase.indices, phase.group_sizes, shuffle=False)]


def random_order(p_hat, group_sizes, unsolvable, seed: int) -> list[Phase]:
    """One phase in random order, re-shuffled every epoch (plain GRPO)."""
    idx = np.arange(len(p_hat))
    return [Phase("random", idx, np.asarray(group_sizes), shuffle=True)]


# Registered here rather than with the decorator: mutation testing (mutmut) leaves decorated functions alone.
CURRICULA.register("phased")(phased)
CURRICULA.register("sorted")(sorted_by_success)
CURRICULA.register("hard_first")(hard_first)
CURRICULA.register("random")(random_order)
