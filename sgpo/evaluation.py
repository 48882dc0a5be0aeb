"""Held-out evaluation: greedy pass@1 and sampled mean@k on a split, with its forward FLOPs."""

from __future__ import annotations

from collections.abc import Sequence

from sgpo.engines.base import Engine, SamplingParams
from sgpo.flops import ModelShape, rollouts_forward_flops
from sgpo.tasks.base import Query, Task


def evaluate(engine: Engine, task: Task, prompt_ids: Sequence[Sequence[int]], queries: Sequence[Query], k: int,
             max_new_tokens: int, temperature: float, seed: int, shape: ModelShape) -> tuple[dict[str, float], float]:
    """pass@1: share solved by the greedy completion; mean@k: mean success of k samples at ``temperature``.

    Returns the metrics and the forward FLOPs the evaluation spent.
    """
    greedy = engine.generate(prompt_ids, 1, SamplingParams(0.0, 1.0, max_new_tokens), seed=seed)
    pass1 = task.score_batch(queries, [[c.text for c in cs] for cs in greedy])
    metrics = {"pass@1": sum(r[0] for r in pass1) / len(queries)}
    shared = engine.shares_prompt
    flops = sum(rollouts_forward_flops(shape, len(p), [cs[0].num_tokens], shared_prompt=shared)
                for p, cs in zip(prompt_ids, greedy))
    if k > 0:
        sampled = engine.generate(prompt_ids, k, SamplingParams(temperature, 1.0, max_new_tokens), seed=seed + 1)
        rewards = task.score_batch(queries, [[c.text for c in cs] for cs in sampled])
        metrics["mean@k"] = sum(sum(r) for r in rewards) / (k * len(queries))
        flops += sum(rollouts_forward_flops(shape, len(p), [c.num_tokens for c in cs], shared_prompt=shared)
                     for p, cs in zip(prompt_ids, sampled))
    return metrics, float(flops)
