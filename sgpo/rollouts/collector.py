"""``RolloutCollector``: a step's (query, group size) specs -> sampled, scored groups to train on.

One ``engine.generate`` call per distinct group size (the engine samples n completions of each
prompt together), then the task's verifier scores every completion. With DAPO dynamic sampling
groups whose rewards do not vary are dropped and the step is refilled from the sampler (whole
sampler steps, so refills converge fast) until it holds as many mixed groups as it asked for;
groups generated beyond that are cut.

Every rollout generated is charged to the ledger as ``rollout``; the rollouts that cannot teach
anything are also charged as ``wasted``: groups with zero reward variance (zero advantage),
and mixed groups a DAPO refill generated but the step had no room for.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sgpo.engines.base import Completion, Engine, SamplingParams, derive_seed
from sgpo.flops import FlopsLedger, ModelShape, rollouts_forward_flops
from sgpo.tasks.base import Query, Task

log = logging.getLogger(__name__)

Spec = tuple[int, int]  # (query index, group size)


@dataclass
class CollectedGroups:
    """The groups a step trains on, in order: specs[i] was sampled as completions[i], scored rewards[i].

    generation_batches: generate rounds this step took (1 unless DAPO refilled).
    rollouts: completions generated in all rounds (trained on or not).
    """

    specs: list[Spec]
    completions: list[list[Completion]]
    rewards: list[list[float]]
    generation_batches: int
    rollouts: int


def zero_variance(rewards: Sequence[float]) -> bool:
    """True when every reward of a group is equal: its group-normalised advantage is zero."""
    return max(rewards) - min(rewards) <= 1e-12


class RolloutCollector:
    """Samples and scores groups for ``queries`` (prompt token ids ``prompt_ids``, same order).

    engine: a callable returning the rollout engine (built lazily on first use).
    refill: DAPO's source of more specs, ``refill(groups) -> specs`` (the sampler's next steps).
    """

    def __init__(self, engine: Callable[[], Engine], task: Task, queries: Sequence[Query],
                 prompt_ids: Sequence[Sequence[int]], sampling: SamplingParams, shape: ModelShape,
                 ledger: FlopsLedger, *, dynamic_sampling: bool, max_generation_batches: int,
                 refill: Callable[[int], list[Spec]] | None = None, screen: int = 0,
                 commit: Callable[[int, float, int, int], bool] | None = None) -> None:
        if screen and dynamic_sampling:
            raise ValueError("selection.screen and algo.dynamic_sampling both decide which groups to finish: "
                             "use one of them (selection.screen=0 or algo.dynamic_sampling=false)")
        if screen and screen < 2:
            raise ValueError(f"selection.screen={screen}: a screening group needs at least 2 rollouts (0: off)")
        self.engine, self.task, self.queries, self.prompt_ids = engine, task, queries, prompt_ids
        self.sampling, self.shape, self.ledger = sampling, shape, ledger
        self.dynamic_sampling, self.max_generation_batches = dynamic_sampling, max_generation_batches
        self.refill = refill
        self.screen, self.commit = int(screen), commit
        self.screened = self.committed = 0  # groups screened / committed after a screen, in all
        self.short_steps = 0  # DAPO steps that hit max_generation_batches and trained on fewer groups

    def generate(self, specs: Sequence[Spec], seed: int) -> tuple[list[list[Completion]], list[list[float]]]:
        """Sample G_i completions for each (query index, G_i) and score them: per-spec completions, rewards."""
        engine = self.engine()
        by_size: dict[int, list[int]] = defaultdict(list)
        for pos, (_, g) in enumerate(specs):
            by_size[g].append(pos)
        completions: list[list[Completion]] = [[] for _ in specs]
        for g, positions in sorted(by_size.items()):
            outs = engine.generate([self.prompt_ids[specs[p][0]] for p in positions], g, self.sampling,
                                   seed=derive_seed(seed, g))
            for p, cs in zip(positions, outs):
                completions[p] = cs
        queries = [self.queries[i] for i, _ in specs]
        rewards = self.task.score_batch(queries, [[c.text for c in cs] for cs in completions])
        return completions, rewards

    def group_flops(self, spec: Spec, completions: Sequence[Completion]) -> float:
        """Forward FLOPs of sampling one group (its prompt once or per sample, as the engine computes it)."""
        return rollouts_forward_flops(self.shape, len(self.prompt_ids[spec[0]]), [c.num_tokens for c in completions],
                                      shared_prompt=self.engine().shares_prompt)

    def collect(self, specs: list[Spec], seed: int, step: int) -> CollectedGroups:
        """Generate and score ``specs`` for rollout step ``step`` (DAPO: drop zero-variance groups and
        refill); charge the ledger. Round r samples under derive_seed(seed, step, r)."""
        if self.screen:
            return self._collect_screened(specs, seed, step)
        target = len(specs)
        kept: list[tuple[Spec, list[Completion], list[float], float]] = []
        rounds = rollouts = 0
        while True:
            completions, rewards = self.generate(specs, derive_seed(seed, step, rounds))
            rounds += 1
            for spec, cs, rs in zip(specs, completions, rewards):
                flops = self.group_flops(spec, cs)
                rollouts += len(cs)
                self.ledger.charge("rollout", flops)
                degenerate = zero_variance(rs)
                if degenerate:
                    self.ledger.charge("wasted", flops)
                if not (self.dynamic_sampling and degenerate):
                    kept.append((spec, cs, rs, flops))
            if not self.dynamic_sampling or len(kept) >= target:
                break
            if rounds >= self.max_generation_batches:
                if not kept:
                    raise RuntimeError(
                        f"DAPO dynamic sampling: only {len(kept)} of {target} groups had mixed rewards after "
                        f"{rounds} generation batches (algo.max_generation_batches); the data is too easy or too "
                        "hard for this policy: raise the cap or filter the data")
                # Some mixed groups: train on them rather than end the run; counted (train/short_steps_total)
                # and said once, since a run whose data has turned easy meets this again and again.
                self.short_steps += 1
                if self.short_steps == 1:
                    log.warning("DAPO dynamic sampling: %d of %d groups had mixed rewards after %d generation "
                                "batches (algo.max_generation_batches): training on those; later such steps are "
                                "counted in train/short_steps_total", len(kept), target, rounds)
                break
            specs = self.refill(target - len(kept)) if self.refill is not None else []
            if not specs:
                break
        if self.dynamic_sampling and len(kept) > target:
            # A refill overshoots by up to one sampler step: those groups were generated and paid for
            # but the step has no room for them (their zero-variance ones are charged already).
            for _, _, _, flops in kept[target:]:
                self.ledger.charge("wasted", flops)
            kept = kept[:target]
        return CollectedGroups([k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept], rounds, rollouts)

    def _collect_screened(self, specs: list[Spec], seed: int, step: int) -> CollectedGroups:
        """Screen, then commit: ``screen`` rollouts per group first (round 0), the rest (round 1) for
        mixed screens and those ``commit`` approves. Each part is charged as the engine ran it (the
        commit prefills its prompt again); a group left degenerate is charged as wasted in full."""
        first = [(q, min(g, self.screen)) for q, g in specs]
        completions, rewards = self.generate(first, derive_seed(seed, step, 0))
        flops = [self.group_flops(spec, cs) for spec, cs in zip(first, completions)]
        rest: list[int] = []
        for i, ((q, g), rs) in enumerate(zip(specs, rewards)):
            if g <= self.screen:
                continue
            self.screened += 1
            if not zero_variance(rs) or (self.commit is not None and self.commit(q, float(sum(rs)), len(rs), g)):
                rest.append(i)
        self.committed += len(rest)
        rounds = 1
        if rest:
            more_specs = [(specs[i][0], specs[i][1] - self.screen) for i in rest]
            more, more_rewards = self.generate(more_specs, derive_seed(seed, step, 1))
            rounds = 2
            for i, spec, cs, rs in zip(rest, more_specs, more, more_rewards):
                completions[i] = list(completions[i]) + list(cs)
                rewards[i] = list(rewards[i]) + list(rs)
                flops[i] += self.group_flops(spec, cs)
        out_specs = []
        for (q, _), cs, rs, f in zip(specs, completions, rewards, flops):
            self.ledger.charge("rollout", f)
            if zero_variance(rs):
                self.ledger.charge("wasted", f)
            out_specs.append((q, len(cs)))
        return CollectedGroups(out_specs, completions, rewards, rounds, sum(len(cs) for cs in completions))
