"""``ProfiledDataModule``: the difficulty profile -> filter -> allocation -> curriculum -> steps.

It turns a ``DifficultyProfile`` over the train split into a ``CurriculumBatchSampler``, or, with
a ``selection`` config (the adaptive sGPO), into an ``AdaptiveSampler`` whose posterior takes the
profile as its prior (or, with no profile, a flat one refitted to the training rollouts) and
which drops nothing for good (filter, allocation and curriculum unused). The
module pulls each step's (query, group size) pairs from the sampler itself inside
``training_step``, so the sampler's position always equals the number of steps trained (no
prefetch drift) and checkpoints restore it exactly; the dataloader only ticks.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import IterableDataset

from sgpo.data.adaptive import AdaptiveSampler
from sgpo.data.allocation import ALLOCATIONS
from sgpo.data.curriculum import CURRICULA, Phase
from sgpo.data.filters import FILTERS
from sgpo.data.posterior import BetaPosterior
from sgpo.data.sampler import CurriculumBatchSampler
from sgpo.data.selection import GroupCosts
from sgpo.profiling.store import DifficultyProfile
from sgpo.tasks.base import Query


def _params(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k != "name"}


class _Ticker(IterableDataset):
    """An endless stream of step numbers: training ends when the module says so."""

    def __iter__(self):
        return iter(itertools.count())


class ProfiledDataModule(pl.LightningDataModule):
    def __init__(self, profile: DifficultyProfile, queries: list[Query], filter_cfg: dict, allocation_cfg: dict,
                 curriculum_cfg: dict, data_cfg: dict, seed: int = 0, selection_cfg: dict | None = None,
                 costs: GroupCosts | None = None, normalize_std: bool = True) -> None:
        super().__init__()
        by_id = {q.id: q for q in queries}
        missing = [qid for qid in profile.query_ids if qid not in by_id]
        if missing:
            raise ValueError(f"{len(missing)} profiled queries are not in the task's train split (e.g. {missing[0]}):"
                             " the profile belongs to other data")
        self.queries = [by_id[qid] for qid in profile.query_ids]
        self.p_hat = profile.success_rates()
        self.k = profile.num_samples
        self.seed = int(seed)
        self.filter_cfg, self.allocation_cfg, self.curriculum_cfg = dict(filter_cfg), dict(allocation_cfg), dict(curriculum_cfg)
        self.data_cfg = dict(data_cfg)
        self.selection_cfg = None if selection_cfg is None else dict(selection_cfg)
        self.normalize_std = bool(normalize_std)  # the advantage's definition, which the value follows
        if self.selection_cfg is not None:
            if costs is None:
                raise ValueError("a selection config needs the queries' GroupCosts (sgpo.data.selection.group_costs)")
            self.costs = costs
            self.successes = profile.outcomes.sum(axis=1).astype(float)
            q = len(self.queries)  # nothing is dropped: the sampler chooses among all queries each step
            self.keep, self.group_sizes = np.ones(q, dtype=bool), np.zeros(q, dtype=int)
            self.phases = [Phase("adaptive", np.arange(q), np.zeros(q, dtype=int))]
        else:
            self.keep, self.group_sizes, self.phases = self.plan(self.p_hat, self.seed)
        self.sampler: CurriculumBatchSampler | AdaptiveSampler | None = None
        self.build_sampler(rank=0, world_size=1)

    def plan(self, p_hat: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, list]:
        """filter -> allocate -> curriculum for success rates ``p_hat`` [Q]: (keep [Q], G [Q], phases)."""
        keep = FILTERS.get(self.filter_cfg["name"])(p_hat, seed, **_params(self.filter_cfg))
        kept = np.flatnonzero(keep)
        group_sizes = np.zeros(len(p_hat), dtype=int)
        group_sizes[kept] = ALLOCATIONS.get(self.allocation_cfg["name"])(p_hat[kept], self.k,
                                                                         **_params(self.allocation_cfg))
        phases = CURRICULA.get(self.curriculum_cfg["name"])(p_hat[kept], group_sizes[kept], p_hat[kept] == 0, seed,
                                                            **_params(self.curriculum_cfg))
        for phase in phases:  # curriculum positions -> indices into self.queries
            phase.indices = kept[phase.indices]
        return keep, group_sizes, phases

    def replan(self, cycle: int, observed: dict[int, list[float]]) -> list:
        """Re-estimate p-hat from the training rollouts and plan the next cycle (``data.refresh_p_hat``).

        p-hat'_q = (s_q + w * p-hat_q) / (n_q + w): the profile's estimate counts as ``w`` =
        ``data.refresh_prior_weight`` x k pseudo-samples, and s_q / n_q are the successes / rollouts
        seen in training (decayed by ``data.refresh_decay`` every cycle, so recent ones weigh most).
        Queries never trained on keep their profiled p-hat (dropped ones stay dropped).
        """
        w = float(self.data_cfg["refresh_prior_weight"]) * max(self.k, 1)
        p_new = self.p_hat.copy()
        for q, (succ, n) in observed.items():
            p_new[q] = (succ + w * self.p_hat[q]) / (n + w)
        self.current_p_hat = p_new
        keep, group_sizes, phases = self.plan(p_new, self.seed + cycle)
        self.keep, self.group_sizes = keep, group_sizes
        return phases

    def build_sampler(self, rank: int, world_size: int) -> CurriculumBatchSampler | AdaptiveSampler:
        d = self.data_cfg
        if self.selection_cfg is not None:
            c = self.selection_cfg
            rule = dict(c["rule"])
            posterior = BetaPosterior(self.successes, self.k, half_life_steps=c["half_life_steps"],
                                      max_prior_strength=float(c["max_prior_strength"]),
                                      refit_prior=bool(c["refit_prior"]))
            self.sampler = AdaptiveSampler(
                posterior, self.costs, rule.pop("name"),
                {**rule, "screen": int(c["screen"]), "commit_threshold": float(c["commit_threshold"]),
                 "normalize_std": self.normalize_std},
                int(d["rollouts_per_step"]), seed=self.seed, pool_factor=float(c["pool_factor"]),
                degenerate_below=float(c["degenerate_below"]), revisit_prob=float(c["revisit_prob"]),
                order=c["order"], max_rollouts_factor=float(c["max_rollouts_factor"]), rank=rank,
                world_size=world_size)
            return self.sampler
        self.sampler = CurriculumBatchSampler(
            self.phases, int(d["rollouts_per_step"]), seed=self.seed, phase_epochs=d["phase_epochs"],
            phase_steps=d["phase_steps"], plateau_window=d["plateau_window"],
            plateau_delta=float(d["plateau_delta"]), cycles=d["cycles"], rank=rank,
            world_size=world_size, replan=self.replan if d["refresh_p_hat"] else None,
            observe_decay=float(d["refresh_decay"]))
        return self.sampler

    def setup(self, stage: str | None = None) -> None:
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1 and self.sampler.world_size != trainer.world_size:
            state = self.sampler.state_dict()
            self.build_sampler(trainer.global_rank, trainer.world_size).load_state_dict(state)

    def train_dataloader(self) -> _Ticker:
        # Step numbers need no worker processes; a plain iterable also keeps Lightning from
        # suggesting num_workers (it checks DataLoaders only).
        return _Ticker()

    def summary(self) -> dict[str, Any]:
        """Counts for logs and reports: kept/dropped queries and the group-size mix (the adaptive
        sampler: nothing dropped, sizes chosen per step; the fitted prior and the queries believed
        degenerate at the start instead)."""
        if isinstance(self.sampler, AdaptiveSampler):
            post, q = self.sampler.posterior, len(self.queries)
            profiled = self.k > 0
            return {
                "data/queries_profiled": q if profiled else 0, "data/queries_kept": q,
                "data/dropped_trivial": 0, "data/dropped_unsolvable": 0,
                "data/kept_unsolvable": int((self.p_hat == 0).sum()) if profiled else None,
                "data/group_size_mix": {}, "data/phases": [("adaptive", q)], "data/mean_group_size": None,
                "data/prior_alpha0": post.alpha0, "data/prior_beta0": post.beta0,
                "data/believed_degenerate": int(self.sampler.believed_degenerate(np.arange(q)).sum()),
            }
        kept = self.keep
        sizes, counts = np.unique(self.group_sizes[kept], return_counts=True)
        profiled = self.k > 0  # without a profile nothing is known about p-hat
        return {
            "data/queries_profiled": int(len(self.p_hat)) if profiled else 0,
            "data/queries_kept": int(kept.sum()),
            "data/dropped_trivial": int((~kept & (self.p_hat > 0)).sum()) if profiled else None,
            "data/dropped_unsolvable": int((~kept & (self.p_hat == 0)).sum()) if profiled else None,
            "data/kept_unsolvable": int((kept & (self.p_hat == 0)).sum()) if profiled else None,
            "data/group_size_mix": {int(s): int(c) for s, c in zip(sizes, counts)},
            "data/phases": [(p.name, int(len(p.indices))) for p in self.phases],
            "data/mean_group_size": float(self.group_sizes[kept].mean()) if kept.any() else 0.0,
        }
