"""Group-size rules: from success rates p-hat [Q] (estimated from k samples) to a group size [Q].

Every rule has the signature ``fn(p_hat, k, **params) -> np.ndarray[int] of shape [Q]`` and is
registered by name. Queries with p-hat = 0 (kept unsolvable ones) get ``g_max`` here; the
``phased`` curriculum may re-assign them the group size of the phase they join.
"""

from __future__ import annotations

import numpy as np

from sgpo.registry import Registry

ALLOCATIONS: Registry = Registry("allocation")


def _check_bounds(g_min: int, g_max: int) -> None:
    if g_min < 2:
        raise ValueError(f"allocation.g_min={g_min}: a group needs at least 2 rollouts for an advantage")
    if g_max < g_min:
        raise ValueError(f"allocation.g_max={g_max} must be >= allocation.g_min={g_min}")


def inverse_pow2(p_hat: np.ndarray, k: int, g_min: int = 2, g_max: int = 8) -> np.ndarray:
    """The paper's buckets: G = clip(2^floor(log2(1/p-hat)), g_min, g_max); p-hat = 0 -> g_max.

    With k = 8: p-hat > 1/4 -> 2, p-hat = 2/8 -> 4, p-hat = 1/8 -> 8.
    """
    _check_bounds(g_min, g_max)
    p = np.asarray(p_hat, dtype=float)
    with np.errstate(divide="ignore"):
        g = np.where(p > 0, 2.0 ** np.floor(np.log2(1.0 / np.where(p > 0, p, 1.0)) + 1e-9), g_max)
    return np.clip(g, g_min, g_max).astype(int)


def inverse(p_hat: np.ndarray, k: int, g_min: int = 2, g_max: int = 8) -> np.ndarray:
    """G = clip(ceil(1/p-hat), g_min, g_max); p-hat = 0 -> g_max."""
    _check_bounds(g_min, g_max)
    p = np.asarray(p_hat, dtype=float)
    g = np.where(p > 0, np.ceil(1.0 / np.where(p > 0, p, 1.0) - 1e-9), g_max)
    return np.clip(g, g_min, g_max).astype(int)


def uniform(p_hat: np.ndarray, k: int, group_size: int = 8) -> np.ndarray:
    """G = group_size for every query (plain GRPO)."""
    _check_bounds(group_size, group_size)
    return np.full(len(p_hat), group_size, dtype=int)


def budgeted(p_hat: np.ndarray, k: int, base: str = "inverse", mean_rollouts: float = 4.0, g_min: int = 2,
             g_max: int = 16, **base_params) -> np.ndarray:
    """Rescale rule ``base`` to a mean of ``mean_rollouts`` per query.

    G_i = clip(round(s * G_base_i), g_min, g_max) with the scale s found by bisection so that
    mean(G) is as close to ``mean_rollouts`` as the rounding and the bounds allow.
    """
    _check_bounds(g_min, g_max)
    if not g_min <= mean_rollouts <= g_max:
        raise ValueError(f"allocation.mean_rollouts={mean_rollouts} must be within [g_min, g_max]=[{g_min}, {g_max}]")
    raw = ALLOCATIONS.get(base)(p_hat, k, **base_params).astype(float)
    if len(raw) == 0:
        return raw.astype(int)
    lo, hi = 1e-3, 1e3
    for _ in range(60):
        mid = (lo * hi) ** 0.5
        if np.clip(np.round(mid * raw), g_min, g_max).mean() < mean_rollouts:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda s: abs(np.clip(np.round(s * raw), g_min, g_max).mean() - mean_rollouts))
    return np.clip(np.round(best * raw), g_min, g_max).astype(int)


# Registered here rather than with the decorator: mutation testing (mutmut) leaves decorated functions alone.
ALLOCATIONS.register("inverse_pow2")(inverse_pow2)
ALLOCATIONS.register("inverse")(inverse)
ALLOCATIONS.register("uniform")(uniform)
ALLOCATIONS.register("budgeted")(budgeted)
