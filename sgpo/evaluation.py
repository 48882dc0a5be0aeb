"""Held-out evaluation: greedy pass@1 and sampled mean@k on a split (with standard errors), its
forward FLOPs, and the total-FLOPs checkpoints at which a run evaluates (``eval.at_total_flops``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sgpo.engines.base import Engine, SamplingParams
from sgpo.flops import ModelShape, rollouts_forward_flops
from sgpo.tasks.base import Query, Task


def evaluate(engine: Engine, task: Task, prompt_ids: Sequence[Sequence[int]], queries: Sequence[Query], k: int,
             max_new_tokens: int, temperature: float, seed: int, shape: ModelShape) -> tuple[dict[str, float], float]:
    """pass@1: share solved by the greedy completion; mean@k: mean success of k samples at ``temperature``.

    Each comes with its standard error over the Q queries: ``pass@1_se`` = sqrt(p (1 - p) / Q);
    ``mean@k_se`` = sd_q(r_q) / sqrt(Q), r_q the query's mean reward over its k samples (it holds
    both the spread of difficulty over queries and the sampling noise of k draws).
    Returns the metrics and the forward FLOPs the evaluation spent.
    """
    q = len(queries)
    greedy = engine.generate(prompt_ids, 1, SamplingParams(0.0, 1.0, max_new_tokens), seed=seed)
    pass1 = task.score_batch(queries, [[c.text for c in cs] for cs in greedy])
    p = sum(r[0] for r in pass1) / q
    metrics = {"pass@1": p, "pass@1_se": math.sqrt(max(p * (1 - p), 0.0) / q)}
    shared = engine.shares_prompt
    flops = sum(rollouts_forward_flops(shape, len(p), [cs[0].num_tokens], shared_prompt=shared)
                for p, cs in zip(prompt_ids, greedy))
    if k > 0:
        sampled = engine.generate(prompt_ids, k, SamplingParams(temperature, 1.0, max_new_tokens), seed=seed + 1)
        rewards = task.score_batch(queries, [[c.text for c in cs] for cs in sampled])
        per_query = np.array([sum(r) / k for r in rewards])
        metrics["mean@k"] = float(per_query.mean())
        metrics["mean@k_se"] = float(per_query.std(ddof=1) / math.sqrt(q)) if q > 1 else float("nan")
        flops += sum(rollouts_forward_flops(shape, len(p), [c.num_tokens for c in cs], shared_prompt=shared)
                     for p, cs in zip(prompt_ids, sampled))
    return metrics, float(flops)


def flops_schedule(spec: Sequence[float] | Mapping[str, Any] | None) -> list[float]:
    """The total-FLOPs checkpoints of ``eval.at_total_flops``, ascending.

    null: none (evaluation follows ``eval.every_n_steps`` only); a list of numbers: those;
    ``{start, stop, points}``: ``points`` values log-spaced from ``start`` to ``stop`` inclusive
    (dense early, where most learning happens). Raises ValueError naming the key on anything else.
    """
    key = "eval.at_total_flops"
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        if set(spec) != {"start", "stop", "points"}:
            raise ValueError(f"{key}={dict(spec)}: give a list of FLOPs or exactly {{start, stop, points}}")
        start, stop, points = float(spec["start"]), float(spec["stop"]), int(spec["points"])
        if not (0 < start < stop and points >= 2):
            raise ValueError(f"{key}={dict(spec)}: needs 0 < start < stop and points >= 2")
        return [float(x) for x in np.geomspace(start, stop, points)]
    values = [float(x) for x in spec]
    if any(not (x > 0 and math.isfinite(x)) for x in values):
        raise ValueError(f"{key}={list(spec)}: every checkpoint must be a finite number of FLOPs > 0")
    return sorted(values)
