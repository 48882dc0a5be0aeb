"""``AdaptiveSampler``: each step's queries and group sizes chosen from a per-query posterior.

The improved sGPO (``method=sgpo``, the ``selection`` config group). Per step:
  1. the posterior forgets a little (``BetaPosterior.decay``: drift as the policy learns), and with
     ``refit_prior`` its prior is fitted again to the evidence so far (``BetaPosterior.refit``);
  2. candidates come from a walk over every train query, in the cycle's order (``random``, or
     ``easy_to_hard`` by posterior mean at the cycle's start); a query is *believed degenerate*
     when even a group of the largest size would be mixed with probability below
     ``degenerate_below``. Such queries are not dropped for good: each one the walk meets is
     revisited with probability ``revisit_prob`` (a group of the smallest size, whose outcome
     updates its posterior), so a query that becomes learnable comes back. The walk stops once it
     holds ``pool_factor`` x budget / largest size candidates that are not believed degenerate
     (or has met every query once; if all it met are believed degenerate, they are the candidates);
  3. the selection rule (sgpo/data/selection.py) gives those candidates group sizes under the
     step's rollout budget (in expected rollouts; the full sizes are capped at
     ``max_rollouts_factor`` x the budget); candidates it leaves out wait for the next cycle;
  4. the trained groups' rewards update the posterior (``observe``, every rank's groups on every
     rank), screening groups included.

It has the ``CurriculumBatchSampler``'s interface (``next_step``, ``local``, ``observe``,
``report_reward``, ``state_dict``, ``plan_digest``), so the module and the data module treat both
alike. Every rank computes the same global step from the same posterior and keeps
``step[rank::world_size]``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sgpo.data.posterior import BetaPosterior, prob_mixed
from sgpo.data.selection import SELECTIONS, GroupCosts, commit_probability

ORDERS = ("random", "easy_to_hard")


@dataclass
class AdaptiveState:
    step: int = 0
    cycle: int = 0
    pos: int = 0
    phase: int = 0  # no phases: kept for the logs' curriculum/phase
    revisits: int = 0  # believed-degenerate queries given a group anyway, in all
    degenerate_met: int = 0  # believed-degenerate queries the walk met, in all


class AdaptiveSampler:
    """posterior: the queries' Beta posterior [Q]; costs: ``GroupCosts`` of every query [Q];
    rule / rule_params: a registered selection rule and its parameters (``sizes`` among them)."""

    def __init__(self, posterior: BetaPosterior, costs: GroupCosts, rule: str, rule_params: dict[str, Any],
                 rollouts_per_step: int, *, seed: int, pool_factor: float, degenerate_below: float,
                 revisit_prob: float, order: str, max_rollouts_factor: float = 2.0, rank: int = 0,
                 world_size: int = 1) -> None:
        sizes = sorted(int(s) for s in rule_params["sizes"])
        if order not in ORDERS:
            raise ValueError(f"selection.order={order!r}; valid: {', '.join(ORDERS)}")
        if rollouts_per_step < sizes[-1]:
            raise ValueError(f"data.rollouts_per_step={rollouts_per_step} is smaller than the largest group "
                             f"({sizes[-1]}); raise it to at least {sizes[-1]}")
        if not 0.0 <= revisit_prob <= 1.0:
            raise ValueError(f"selection.revisit_prob={revisit_prob}: must be within [0, 1]")
        if max_rollouts_factor < 1:
            raise ValueError(f"selection.max_rollouts_factor={max_rollouts_factor}: must be >= 1")
        if pool_factor <= 0:
            raise ValueError(f"selection.pool_factor={pool_factor}: must be > 0")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.posterior, self.costs = posterior, costs
        self.rule, self.rule_params = SELECTIONS.get(rule), dict(rule_params)
        self.budget, self.seed = int(rollouts_per_step), int(seed)
        self.g_min, self.g_max = sizes[0], sizes[-1]
        self.pool_factor, self.degenerate_below, self.revisit_prob = pool_factor, degenerate_below, revisit_prob
        self.order_name = order
        self.max_rollouts_factor = float(max_rollouts_factor)
        self.rank, self.world_size = rank, world_size
        self.state = AdaptiveState()
        self.order = self._cycle_order(0)
        self.last_step_info: dict[str, float] = {}

    def _cycle_order(self, cycle: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, cycle, 11])
        perm = rng.permutation(len(self.posterior))
        if self.order_name == "easy_to_hard":  # stable sort of a random permutation: random ties
            perm = perm[np.argsort(-self.posterior.mean[perm], kind="stable")]
        return perm

    def believed_degenerate(self, queries: np.ndarray) -> np.ndarray:
        """[n] bool: a group of the largest size would be mixed with probability < degenerate_below."""
        post = self.posterior
        return prob_mixed(post.a[queries], post.b[queries], self.g_max) < self.degenerate_below

    def next_step(self) -> list[tuple[int, int]]:
        """The next global step's (query index, group size) pairs (never empty while queries exist)."""
        s = self.state
        if s.step > 0:
            self.posterior.end_step()
        rng = np.random.default_rng([self.seed, s.step, 13])
        want = math.ceil(self.pool_factor * self.budget / self.g_max)
        good: list[int] = []
        revisit: list[int] = []
        passed: list[int] = []  # believed degenerate and not revisited
        met: set[int] = set()  # a walk that wraps into the next cycle must not meet a query twice
        degenerate = self.believed_degenerate(np.arange(len(self.posterior)))
        while len(good) < want and len(met) < len(self.posterior):
            if s.pos >= len(self.order):
                s.cycle, s.pos = s.cycle + 1, 0
                self.order = self._cycle_order(s.cycle)
            q = int(self.order[s.pos])
            s.pos += 1
            if q in met:
                continue
            met.add(q)
            if not degenerate[q]:
                good.append(q)
                continue
            s.degenerate_met += 1
            if rng.random() < self.revisit_prob and (len(revisit) + 1) * self.g_min <= self.budget:
                revisit.append(q)
            else:
                passed.append(q)
        if not good and not revisit:  # every query met is believed degenerate: the rule ranks them all
            good = passed
        left = self.budget - self.g_min * len(revisit)
        idx = np.asarray(good, dtype=int)
        post = self.posterior
        params = {**self.rule_params, "max_rollouts": self.max_rollouts_factor * self.budget - self.g_min * len(revisit)}
        sizes = self.rule(post.a[idx], post.b[idx], self.costs.take(idx), left, **params) if len(idx) else []
        step = [(q, self.g_min) for q in revisit] + [(int(q), int(g)) for q, g in zip(idx, sizes) if g > 0]
        s.revisits += len(revisit)
        s.step += 1
        self.last_step_info = {"selection/candidates": float(len(good)), "selection/revisits": float(len(revisit)),
                               "selection/believed_degenerate": float(degenerate.sum()),
                               "selection/cycle": float(s.cycle),
                               "selection/posterior_mean": float(post.mean.mean()),
                               "selection/prior_alpha0": post.alpha0, "selection/prior_beta0": post.beta0}
        return step

    def commit(self, query: int, successes: float, screen: int, group: int) -> bool:
        """Screen, then commit: finish ``query``'s group of ``group`` after a degenerate screen of
        ``screen`` rollouts with ``successes`` successes? (``commit_probability`` >= the threshold)."""
        post = self.posterior
        p = commit_probability(post.a[[query]], post.b[[query]], np.array([successes]), screen, group)[0]
        return bool(p >= float(self.rule_params["commit_threshold"]))

    def local(self, step: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """This rank's share of a global step."""
        return step[self.rank :: self.world_size]

    def observe(self, query: int, successes: float, rollouts: float) -> None:
        """A trained (or screened) group's summed reward over its rollouts: the posterior's update."""
        self.posterior.update(int(query), float(successes), float(rollouts))

    def report_reward(self, reward: float) -> None:
        """A step's mean train reward: unused (no phases, no plateau rule); the interface's."""

    @property
    def phase_name(self) -> str:
        return "adaptive"

    def plan_digest(self) -> str:
        """sha256 of the posterior, the walk's order and the position: equal on every rank."""
        h = hashlib.sha256()
        h.update(np.round(self.posterior.a, 9).tobytes())
        h.update(np.round(self.posterior.b, 9).tobytes())
        h.update(np.asarray(self.order, dtype=np.int64).tobytes())
        s = self.state
        h.update(repr((s.step, s.cycle, s.pos, s.revisits, s.degenerate_met)).encode())
        return h.hexdigest()

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        while True:
            yield self.local(self.next_step())

    def state_dict(self) -> dict[str, Any]:
        s = self.state
        return {"step": s.step, "cycle": s.cycle, "pos": s.pos, "revisits": s.revisits,
                "degenerate_met": s.degenerate_met, "order": self.order.tolist(),
                "posterior": self.posterior.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "posterior" not in state:
            raise ValueError("this checkpoint's sampler state has no posterior: it was written by another method "
                             "(the curriculum sampler); resume it with the method it was trained with")
        self.posterior.load_state_dict(state["posterior"])
        self.order = np.asarray(state["order"], dtype=int)
        self.state = AdaptiveState(step=int(state["step"]), cycle=int(state["cycle"]), pos=int(state["pos"]),
                                   revisits=int(state["revisits"]), degenerate_met=int(state["degenerate_met"]))
