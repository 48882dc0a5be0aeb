"""reasoning-gym: any of its ~100 procedural generators by name, scored by its own scorer.

Splits are drawn with seeds far apart (train: ``seed``, val and test: ``seed`` + 1 or 2 million)
and de-duplicated by question, so no question appears in two splits. The model is asked to put
its answer in ``<answer>...</answer>``; that tag's content goes to the generator's
``score_answer`` (a reward in [0, 1]). Small models rarely follow the tag format, so
``answer_extraction="tag_or_last_number"`` falls back to the completion's last number.
Needs the ``gym`` extra (``pip install sgpo[gym]``).

Scorers are third-party code run on model text, so they run in the verify worker
(sgpo/tasks/verify_worker.py): a check past ``verify_timeout_s`` is killed and scores 0, and
eval/exec there is refused. Generators whose scorer evaluates code (``UNSAFE_SCORERS``) are
refused when the task is built.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sgpo.tasks.base import Query, Task, query_id
from sgpo.tasks.math_answers import MAX_TAIL_CHARS, clean, final_number
from sgpo.tasks.verify_worker import CheckFailed, CheckTimeout, worker

log = logging.getLogger(__name__)

EXTRACTIONS = ("tag", "tag_or_last_number")
SPLIT_SEED_GAP = 1_000_003
INSTRUCTION = "Give your final answer inside <answer></answer> tags, e.g. <answer>42</answer>."
WORKER = "reasoning_gym"
# Generators whose score_answer evaluates code (reasoning-gym 0.1.25: found by reading every
# scorer and by running each one under sgpo.tasks.eval_guard, which tests/test_gym_scorers.py
# repeats for all the others). A completion would run as code, or a check would run eval.
_ANSWER_EVAL = "eval() of the model's answer"
_ANSWER_SYMPY = "sympy's parse_expr, which runs eval, on the model's answer"
UNSAFE_SCORERS = {
    "binary_matrix": _ANSWER_EVAL,
    "n_queens": _ANSWER_EVAL,
    "spiral_matrix": _ANSWER_EVAL,
    "string_insertion": _ANSWER_EVAL,
    "countdown": _ANSWER_SYMPY,
    "intermediate_integration": _ANSWER_SYMPY,
    "polynomial_multiplication": _ANSWER_SYMPY,
    "puzzle24": _ANSWER_SYMPY,
    "simple_integration": _ANSWER_SYMPY,
    "bitwise_arithmetic": "eval() of the problem text at every check (not the answer, but sgpo's checks run no eval)",
    "number_sorting": "eval() of the reference answer at every check (not the answer, but sgpo's checks run no eval)",
    "composite": "the scorers of the generators it composes, which are not vetted through it (name one generator)",
}


class ReasoningGymTask(Task):
    name = "reasoning_gym"

    def __init__(self, generator: str, seed: int = 0, num_train: int = 1024, num_val: int = 128, num_test: int = 256,
                 instruction: str = INSTRUCTION, generator_args: dict[str, Any] | None = None,
                 answer_extraction: str = "tag", verify_timeout_s: float = 2.0) -> None:
        super().__init__()
        if answer_extraction not in EXTRACTIONS:
            raise ValueError(f"task.answer_extraction={answer_extraction!r}; valid: {', '.join(EXTRACTIONS)}")
        if not verify_timeout_s > 0:
            raise ValueError(f"task.verify_timeout_s={verify_timeout_s} must be > 0 (seconds one check may take)")
        self.answer_extraction = answer_extraction
        self.verify_timeout_s = float(verify_timeout_s)
        try:
            import reasoning_gym
        except ImportError as err:
            raise ImportError("task=reasoning_gym needs the reasoning-gym package: pip install 'sgpo[gym]'") from err
        from reasoning_gym.factory import DATASETS

        safe = sorted(set(DATASETS) - set(UNSAFE_SCORERS))
        if generator in UNSAFE_SCORERS:
            raise ValueError(f"task.name={generator!r}: refused, the reasoning_gym scorer runs {UNSAFE_SCORERS[generator]}, "
                             f"and sgpo's verifiers never evaluate code during a check; valid: {', '.join(safe)}")
        if generator not in DATASETS:
            raise KeyError(f"task.name={generator!r} is not a reasoning_gym generator; valid: {', '.join(safe)}")
        for key, value in (("task.num_train", num_train), ("task.num_val", num_val), ("task.num_test", num_test)):
            if value < 0:
                raise ValueError(f"{key}={value} must be >= 0")
        self.instruction = instruction  # appended by Task.prompt_text
        self.entries: dict[str, dict[str, Any]] = {}
        self.datasets: dict[str, Any] = {}
        specs = []  # (split, size, seed) of each dataset: the worker re-creates them to score
        seen: set[str] = set()
        for offset, (split, size) in enumerate((("train", num_train), ("val", num_val), ("test", num_test))):
            # Draw up to 4x the size so questions already in an earlier split can be replaced.
            # reasoning-gym seeds item i with (seed + i): splits' seeds lie far apart so they never share items.
            specs.append((split, max(4 * size, 1), seed + offset * SPLIT_SEED_GAP))
            try:
                dataset = reasoning_gym.create_dataset(generator, size=specs[-1][1], seed=specs[-1][2],
                                                       **dict(generator_args or {}))
            except (TypeError, ValueError, AssertionError) as err:
                raise ValueError(f"task.generator_args={dict(generator_args or {})} rejected by the reasoning_gym "
                                 f"generator {generator!r}: {err}") from err
            self.datasets[split] = dataset
            queries = []
            for index in range(len(dataset)):
                if len(queries) >= size:
                    break
                entry = dataset[index]
                qid = query_id(entry["question"])
                if qid in seen:  # the same question drawn for two splits stays in the first
                    continue
                seen.add(qid)
                self.entries[qid] = {"split": split, "index": index, "entry": entry}
                queries.append(Query(id=qid, prompt=entry["question"], answer=str(entry["answer"]),
                                     meta={"generator": generator, "index": index}))
            if len(queries) < size:
                log.warning("reasoning_gym %s: only %d distinct %s questions of the %d asked (task.num_%s); the "
                            "generator's settings allow few distinct questions", generator, len(queries), split, size,
                            split)
            self._splits[split] = queries
        args = dict(generator_args or {})
        key = hashlib.sha256(repr((generator, sorted(args.items()), specs)).encode()).hexdigest()[:16]
        self._setup = ("sgpo.tasks.gym:load_datasets", (key, generator, args, tuple(specs)))
        self._key = key
        worker(WORKER).add_setup(self._setup)
        worker(WORKER).start()  # in the background: the first check need not wait for it

    def score(self, query: Query, completion: str) -> float:
        found = self.entries[query.id]
        text = clean(completion[-MAX_TAIL_CHARS:])
        answer = tag_content(text)
        if answer is None and self.answer_extraction == "tag_or_last_number":
            answer = final_number(text)
        if answer is None:
            return 0.0
        try:  # the generator's own scorer, in the worker; a crash or overrun on hostile text is a wrong answer
            reward = float(worker(WORKER).call("sgpo.tasks.gym:score_answer", (self._key, found["split"], answer,
                                               found["entry"]), self.verify_timeout_s, setup=self._setup))
        except CheckTimeout:
            log.warning("reasoning_gym check ran past %.1f s (answer %r...): scored 0", self.verify_timeout_s,
                        answer[:40])
            return 0.0
        except CheckFailed as err:
            log.debug("reasoning_gym scorer failed (%s): scored 0", err)
            return 0.0
        return min(max(reward, 0.0), 1.0) if reward == reward else 0.0  # NaN scores 0


def tag_content(text: str) -> str | None:
    """Stripped content of the last ``<answer>...</answer>`` (None if absent); linear time.

    reasoning-gym's ``extract_answer`` regex is quadratic on many unclosed tags.
    """
    close = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, close) if close != -1 else -1
    return None if start == -1 else text[start + len("<answer>"):close].strip()


_WORKER_DATASETS: dict[str, dict[str, Any]] = {}


def load_datasets(key: str, generator: str, generator_args: dict[str, Any], specs: tuple) -> None:
    """Worker side: a task's datasets, re-created from the same settings, for their scorers."""
    import reasoning_gym

    _WORKER_DATASETS[key] = {split: reasoning_gym.create_dataset(generator, size=size, seed=seed, **generator_args)
                             for split, size, seed in specs}


def score_answer(key: str, split: str, answer: str, entry: dict[str, Any]) -> float:
    """Worker side: the generator's ``score_answer`` for one extracted answer."""
    return float(_WORKER_DATASETS[key][split].score_answer(answer=answer, entry=entry))
