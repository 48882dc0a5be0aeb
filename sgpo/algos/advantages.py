"""Group-normalised advantages for groups of unequal size, grouped by an index (pure tensor math)."""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, group_index: torch.Tensor, normalize_std: bool = True,
                     eps: float = 1e-6) -> tuple[torch.Tensor, dict[str, float]]:
    """A_i = (r_i - mean_g) / (std_g + eps), or r_i - mean_g without std normalisation.

    rewards: [N] float, one per rollout. group_index: [N] long in [0, num_groups), the group of
    each rollout (groups may differ in size). std is the unbiased sample std of the group.
    Degenerate groups (every reward equal, or a single rollout) get advantage 0 and are counted.

    Returns advantages [N] and metrics: num_groups, num_degenerate_groups, frac_zero_adv_groups.
    """
    rewards = rewards.to(torch.float64)
    num_groups = int(group_index.max().item()) + 1 if group_index.numel() else 0
    counts = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group_index, torch.ones_like(rewards))
    sums = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group_index, rewards)
    means = sums / counts.clamp(min=1)
    centered = rewards - means[group_index]
    sq = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, group_index, centered**2)
    std = torch.sqrt(sq / (counts - 1).clamp(min=1))
    degenerate = (std <= 1e-12) | (counts < 2)
    adv = centered / (std[group_index] + eps) if normalize_std else centered
    adv = torch.where(degenerate[group_index], torch.zeros_like(adv), adv)
    present = counts > 0
    n_deg = int((degenerate & present).sum().item())
    n = int(present.sum().item())
    return adv.to(torch.float32), {"num_groups": n, "num_degenerate_groups": n_deg,
                                   "frac_zero_adv_groups": n_deg / n if n else 0.0}

