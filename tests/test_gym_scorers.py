"""reasoning-gym scorers under the eval/exec guard: every generator sgpo accepts is scored in the
verify worker with hostile answers (no eval/exec, each check within its time limit, the same
reward the generator gives in-process), and every generator it refuses really evaluates code."""

from __future__ import annotations

import pytest
from verifier_guard import check, guard  # noqa: F401 - guard: an autouse fixture

from sgpo.tasks import build_task, eval_guard
from sgpo.tasks.gym import UNSAFE_SCORERS
from sgpo.tasks.verify_worker import worker

reasoning_gym = pytest.importorskip("reasoning_gym")
from reasoning_gym.factory import DATASETS  # noqa: E402

TIMEOUT_S = 2.0
MARGIN_S = 0.75
SAFE = sorted(set(DATASETS) - set(UNSAFE_SCORERS))
# Answers (the content of <answer>...</answer>): code, lists that eval-based scorers would run,
# towers of exponents, nesting, huge numbers, control characters, tags inside tags.
PROBES = [
    "__import__('os').getpid()", "[[1, 2], [3, 4]]", "{'a': 1}", "10**10**10", "\\boxed{9^{9^{9}}}", "9^9^9^9",
    "1" * 3900, "(" * 1900 + ")" * 1900, "{" * 3900, "[" * 3900, "+".join(["1"] * 1900), "\x00" * 100,
    "", "-", "nan", "1e999999", "٤٢", "\u202e24\u202c", "<answer>" * 400, "A" * 3900, "\n".join(["1 2 3"] * 600),
]


def gym_task(generator: str):
    return build_task({"type": "reasoning_gym", "name": generator, "num_train": 1, "num_val": 0, "num_test": 0,
                       "verify_timeout_s": TIMEOUT_S})


@pytest.mark.parametrize("generator", SAFE)
def test_safe_generators_score_hostile_answers_without_eval_within_the_limit(generator):
    task = gym_task(generator)
    query = task.split("train")[0]
    entry = task.entries[query.id]["entry"]
    worker("reasoning_gym").start(wait=True)  # this generator's datasets, re-created in the worker
    right, _ = check(task.score, query, f"so <answer>{query.answer}</answer>")
    own = task.datasets["train"].score_answer(answer=query.answer.strip(), entry=entry)  # in-process, unwatched
    assert right == pytest.approx(min(max(float(own), 0.0), 1.0))  # the worker scores as the generator does
    for probe in PROBES:
        worker("reasoning_gym").start(wait=True)  # a check after a killed one waits for the replacement: not timed
        reward, seconds = check(task.score, query, f"<answer>{probe}</answer>")
        assert 0.0 <= reward <= 1.0 and seconds < TIMEOUT_S + MARGIN_S, (probe[:30], seconds)


def test_most_generators_reward_their_own_answer():
    """Proves the scorers really run in the worker (a broken path would score everything 0)."""
    rewarded = []
    for generator in ("basic_arithmetic", "chain_sum", "gcd", "lcm", "leg_counting", "word_sorting"):
        task = gym_task(generator)
        query = task.split("train")[0]
        rewarded.append(check(task.score, query, f"<answer>{query.answer}</answer>")[0])
    assert rewarded == [1.0] * len(rewarded)


@pytest.mark.parametrize("generator", sorted(UNSAFE_SCORERS))
def test_generators_whose_scorer_evaluates_code_are_refused(generator):
    with pytest.raises(ValueError, match=rf"task.name='{generator}': refused, .*valid: .*basic_arithmetic"):
        gym_task(generator)


@pytest.mark.parametrize("generator", sorted(set(UNSAFE_SCORERS) - {"composite"}))
def test_refused_generators_really_evaluate_code(generator):
    """The refusal list is not stale: each scorer, run here under the guard, evaluates code."""
    dataset = reasoning_gym.create_dataset(generator, size=1, seed=0)
    with eval_guard.checking():
        try:
            dataset.score_answer(answer="[[1, 2], [3, 4]]", entry=dataset[0])
        except Exception:  # noqa: BLE001 - only what it evaluated matters here
            pass
    assert eval_guard.take(), f"{generator}'s scorer evaluated nothing: take it off UNSAFE_SCORERS"
