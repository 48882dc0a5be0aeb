"""The curriculum batch sampler: packs queries into training steps under a rollout budget.

A step is a list of (query index, group size) whose group sizes sum to at most
``rollouts_per_step``. Phases come from a curriculum (sgpo/data/curriculum.py); a phase ends
after ``phase_epochs`` passes over its queries, or ``phase_steps`` steps, or when the mean train
reward of the last ``plateau_window`` steps improves on the window before by less than
``plateau_delta`` (whichever is set and comes first). ``cycles`` passes over all phases are
made (None: endless; the trainer's step or FLOPs budget ends the run).

Deterministic under ``seed``: orders inside a phase come from a generator seeded by (seed,
phase, epoch). ``state_dict()`` after a step restores the sampler to continue right after it.

With ``replan`` (``data.refresh_p_hat``), each new cycle is re-planned from p-hat re-estimated
on the rollouts seen so far (``observe``), since the profile describes the initial policy only.

DDP: the sampler shards by rank itself. Every rank builds the same global step and keeps
``step[rank::world_size]``; groups are never split across ranks, so group advantages stay local.
Everything the sampler learns from rollouts (``observe``, ``report_reward``) must be the same on
every rank: the module feeds it job-wide values, so every rank plans the same steps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sgpo.data.curriculum import Phase


@dataclass
class SamplerState:
    cycle: int = 0
    phase: int = 0
    epoch: int = 0
    pos: int = 0
    step: int = 0
    phase_step: int = 0
    phase_rewards: list[float] = field(default_factory=list)


class CurriculumBatchSampler:
    def __init__(self, phases: list[Phase], rollouts_per_step: int, *, seed: int, phase_epochs: int | None,
                 phase_steps: int | None, plateau_window: int | None, plateau_delta: float, cycles: int | None,
                 observe_decay: float, rank: int = 0, world_size: int = 1,
                 replan: Callable[[int, dict[int, list[float]]], list[Phase]] | None = None) -> None:
        phases = [p for p in phases if len(p.indices)]
        if not phases:
            raise ValueError("no queries left to train on after filtering: loosen the filter (filter=none) "
                             "or check the profile")
        largest = max(int(p.group_sizes.max()) for p in phases)
        if rollouts_per_step < largest:
            raise ValueError(f"data.rollouts_per_step={rollouts_per_step} is smaller than the largest group "
                             f"({largest}); raise it to at least {largest}")
        if phase_epochs is None and phase_steps is None and plateau_window is None:
            raise ValueError("set at least one of data.phase_epochs, data.phase_steps, data.plateau_window")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.phases, self.budget, self.seed = phases, int(rollouts_per_step), int(seed)
        self.phase_epochs, self.phase_steps = phase_epochs, phase_steps
        self.plateau_window, self.plateau_delta, self.cycles = plateau_window, plateau_delta, cycles
        self.rank, self.world_size = rank, world_size
        self.replan, self.observe_decay = replan, observe_decay
        self.observed: dict[int, list[float]] = {}  # query -> [successes, rollouts] seen in training
        self.replanned = False
        self.state = SamplerState()

    # -- order and phase logic ---------------------------------------------------------------
    def _order(self, phase: int, cycle: int, epoch: int) -> np.ndarray:
        p = self.phases[phase]
        if not p.shuffle:
            return np.arange(len(p.indices))
        rng = np.random.default_rng([self.seed, cycle, phase, epoch])
        return rng.permutation(len(p.indices))

    def _phase_over(self) -> bool:
        s = self.state
        if self.phase_epochs is not None and s.epoch >= self.phase_epochs:
            return True
        if self.phase_steps is not None and s.phase_step >= self.phase_steps:
            return True
        w = self.plateau_window
        if w and len(s.phase_rewards) >= 2 * w:
            recent, before = np.mean(s.phase_rewards[-w:]), np.mean(s.phase_rewards[-2 * w:-w])
            return bool(recent - before < self.plateau_delta)
        return False

    def _advance_phase(self) -> None:
        s = self.state
        s.phase, s.epoch, s.pos, s.phase_step, s.phase_rewards = s.phase + 1, 0, 0, 0, []
        if s.phase >= len(self.phases):
            s.phase, s.cycle = 0, s.cycle + 1
            if self.replan is not None and not self.finished:
                self.phases = [p for p in self.replan(s.cycle, self.observed) if len(p.indices)]
                self.replanned = True
                for stats in self.observed.values():  # older evidence counts less
                    stats[0] *= self.observe_decay
                    stats[1] *= self.observe_decay

    @property
    def finished(self) -> bool:
        return self.cycles is not None and self.state.cycle >= self.cycles

    # -- stepping ----------------------------------------------------------------------------
    def next_step(self) -> list[tuple[int, int]] | None:
        """The next global step's (query index, group size) pairs, or None when training data is done."""
        if self._phase_over():
            self._advance_phase()
        if self.finished:
            return None
        s = self.state
        phase = self.phases[s.phase]
        order = self._order(s.phase, s.cycle, s.epoch)
        step: list[tuple[int, int]] = []
        used = 0
        while s.pos < len(order):
            j = order[s.pos]
            g = int(phase.group_sizes[j])
            if step and used + g > self.budget:
                break
            step.append((int(phase.indices[j]), g))
            used += g
            s.pos += 1
        if s.pos >= len(order):
            s.epoch, s.pos = s.epoch + 1, 0
        s.step += 1
        s.phase_step += 1
        return step

    def local(self, step: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """This rank's share of a global step."""
        return step[self.rank :: self.world_size]

    def observe(self, query: int, successes: float, rollouts: float) -> None:
        """Record a trained group: the sum of its rewards and its size (drive the p-hat refresh).

        Several processes: every rank must observe every rank's groups (the module shares them),
        so every rank re-plans the same next cycle."""
        stats = self.observed.setdefault(int(query), [0.0, 0.0])
        stats[0] += float(successes)
        stats[1] += float(rollouts)

    def plan_digest(self) -> str:
        """sha256 of the live plan (phases, their queries and group sizes) and the position in it:
        equal on every rank when ranks plan the same steps."""
        h = hashlib.sha256()
        for p in self.phases:
            h.update(p.name.encode())
            h.update(np.asarray(p.indices, dtype=np.int64).tobytes())
            h.update(np.asarray(p.group_sizes, dtype=np.int64).tobytes())
        s = self.state
        h.update(repr((s.cycle, s.phase, s.epoch, s.pos, s.step, s.phase_step, sorted(self.observed.items()))).encode())
        return h.hexdigest()

    def report_reward(self, reward: float) -> None:
        """Feed back a step's mean train reward (drives the plateau rule)."""
        self.state.phase_rewards.append(float(reward))

    @property
    def phase_name(self) -> str:
        return self.phases[min(self.state.phase, len(self.phases) - 1)].name

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        while (step := self.next_step()) is not None:
            yield self.local(step)

    def state_dict(self) -> dict[str, Any]:
        s = self.state
        out = {"cycle": s.cycle, "phase": s.phase, "epoch": s.epoch, "pos": s.pos, "step": s.step,
               "phase_step": s.phase_step, "phase_rewards": list(s.phase_rewards),
               "observed": {str(q): list(v) for q, v in self.observed.items()}}
        if self.replanned:  # the live plan differs from the one built at start: keep it
            out["phases"] = [{"name": p.name, "indices": p.indices.tolist(), "group_sizes": p.group_sizes.tolist(),
                              "shuffle": p.shuffle} for p in self.phases]
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.observed = {int(q): list(v) for q, v in state.pop("observed", {}).items()}
        phases = state.pop("phases", None)
        if phases is not None:
            self.phases = [Phase(p["name"], np.asarray(p["indices"], dtype=int), np.asarray(p["group_sizes"], dtype=int),
                                 p["shuffle"]) for p in phases]
            self.replanned = True
        self.state = SamplerState(**{**state, "phase_rewards": list(state.get("phase_rewards", []))})
