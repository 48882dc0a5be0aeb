"""Query filters: from success rates p-hat [Q] to a keep mask [Q] (pure functions, one registry).

Every filter has the signature ``fn(p_hat, seed, **params) -> np.ndarray[bool] of shape [Q]``.
"""

from __future__ import annotations

import numpy as np

from sgpo.registry import Registry

FILTERS: Registry = Registry("filter")


def sgpo_filter(p_hat: np.ndarray, seed: int, trivial_threshold: float = 0.75, keep_unsolvable: float = 0.1) -> np.ndarray:
    """Keep 0 < p-hat <= trivial_threshold, plus a seeded random ``keep_unsolvable`` share of p-hat = 0.

    The number of unsolvable queries kept is round(keep_unsolvable * #unsolvable), chosen
    uniformly at random with ``seed``, so the kept set is reproducible.
    """
    if not 0.0 <= trivial_threshold <= 1.0:
        raise ValueError(f"filter.trivial_threshold={trivial_threshold} must be in [0, 1]")
    if not 0.0 <= keep_unsolvable <= 1.0:
        raise ValueError(f"filter.keep_unsolvable={keep_unsolvable} must be in [0, 1]")
    p_hat = np.asarray(p_hat, dtype=float)
    keep = (p_hat > 0) & (p_hat <= trivial_threshold)
    unsolvable = np.flatnonzero(p_hat == 0)
    n_keep = int(round(keep_unsolvable * len(unsolvable)))
    if n_keep:
        chosen = np.random.default_rng(seed).choice(unsolvable, size=n_keep, replace=False)
        keep[chosen] = True
    return keep


def solvable_only(p_hat: np.ndarray, seed: int) -> np.ndarray:
    """Keep every query solved at least once (p-hat > 0); trivial ones stay."""
    return np.asarray(p_hat, dtype=float) > 0


def no_filter(p_hat: np.ndarray, seed: int) -> np.ndarray:
    """Keep everything (the GRPO baseline)."""
    return np.ones(len(p_hat), dtype=bool)


# Registered here rather than with the decorator: mutation testing (mutmut) leaves decorated functions alone.
FILTERS.register("sgpo")(sgpo_filter)
FILTERS.register("solvable_only")(solvable_only)
FILTERS.register("none")(no_filter)
