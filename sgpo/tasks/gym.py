"""reasoning-gym: any of its ~100 procedural generators by name, scored by its own scorer.

Splits are drawn with seeds far apart (train: ``seed``, val and test: ``seed`` + 1 or 2 million)
and de-duplicated by question, so no question appears in two splits. The model is asked to put
its answer in ``<answer>...</answer>``; that tag's content goes to the generator's
``score_answer`` (a reward in [0, 1]). Small models rarely follow the tag format, so
``answer_extraction="tag_or_last_number"`` falls back to the completion's last number.
Needs the ``gym`` extra (``pip install sgpo[gym]``).
"""

from __future__ import annotations

import logging
from typing import Any

from sgpo.tasks.base import Query, Task, query_id
from sgpo.tasks.math_answers import MAX_TAIL_CHARS, clean, final_number

log = logging.getLogger(__name__)

EXTRACTIONS = ("tag", "tag_or_last_number")
SPLIT_SEED_GAP = 1_000_003
INSTRUCTION = "Give your final answer inside <answer></answer> tags, e.g. <answer>42</answer>."


class ReasoningGymTask(Task):
    name = "reasoning_gym"

    def __init__(self, generator: str, seed: int = 0, num_train: int = 1024, num_val: int = 128, num_test: int = 256,
                 instruction: str = INSTRUCTION, generator_args: dict[str, Any] | None = None,
                 answer_extraction: str = "tag") -> None:
        super().__init__()
        if answer_extraction not in EXTRACTIONS:
            raise ValueError(f"task.answer_extraction={answer_extraction!r}; valid: {', '.join(EXTRACTIONS)}")
        self.answer_extraction = answer_extraction
        try:
            import reasoning_gym
        except ImportError as err:
            raise ImportError("task=reasoning_gym needs the reasoning-gym package: pip install 'sgpo[gym]'") from err
        from reasoning_gym.factory import DATASETS

        if generator not in DATASETS:
            raise KeyError(f"task.name={generator!r} is not a reasoning_gym generator; valid: {', '.join(sorted(DATASETS))}")
        for key, value in (("task.num_train", num_train), ("task.num_val", num_val), ("task.num_test", num_test)):
            if value < 0:
                raise ValueError(f"{key}={value} must be >= 0")
        self.instruction = instruction  # appended by Task.prompt_text
        self.entries: dict[str, dict[str, Any]] = {}
        self.datasets: dict[str, Any] = {}
        seen: set[str] = set()
        for offset, (split, size) in enumerate((("train", num_train), ("val", num_val), ("test", num_test))):
            # Draw up to 4x the size so questions already in an earlier split can be replaced.
            # reasoning-gym seeds item i with (seed + i): splits' seeds lie far apart so they never share items.
            try:
                dataset = reasoning_gym.create_dataset(generator, size=max(4 * size, 1),
                                                       seed=seed + offset * SPLIT_SEED_GAP, **dict(generator_args or {}))
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

    def score(self, query: Query, completion: str) -> float:
        from reasoning_gym.utils import extract_answer

        found = self.entries[query.id]
        text = clean(completion[-MAX_TAIL_CHARS:])
        answer = extract_answer(text)
        if answer is None and self.answer_extraction == "tag_or_last_number":
            answer = final_number(text)
        if answer is None:
            return 0.0
        try:  # the generator's own scorer; a crash on hostile text is a wrong answer
            reward = float(self.datasets[found["split"]].score_answer(answer=answer, entry=found["entry"]))
        except Exception as err:
            log.debug("reasoning_gym scorer failed (%s): scored 0", err)
            return 0.0
        return min(max(reward, 0.0), 1.0)
