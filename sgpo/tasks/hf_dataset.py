"""GSM8K, MATH and any other ``datasets`` source: hub names or local parquet / jsonl / csv files.

Every split comes from ``datasets.load_dataset(**source)``, so the hub (``{path: openai/gsm8k,
name: main, split: train}``) and local files (``{path: parquet, data_files: /data/train.parquet,
split: train}``) take the same code path; the tests' fixture files go through it too. Without a
val source, val is carved out of train by a hash of the query id (never overlapping).

Reference answers are read by ``answer_format``: ``gsm8k`` (the text after ``####``), ``boxed``
(the last ``\\boxed{}`` of a worked solution) or ``plain`` (the field as is). Completions are
checked with math-verify under a time limit that holds (sgpo/tasks/math_answers.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sgpo.tasks.base import Query, Task, query_id
from sgpo.tasks.jsonl import BAD_ROW_POLICIES, DataError, check_prompt_length, field_text, report_skipped
from sgpo.tasks.math_answers import extract_boxed, math_match, start_worker

log = logging.getLogger(__name__)

ANSWER_FORMATS = ("gsm8k", "boxed", "plain")
VAL_PER_MILLE_DEFAULT = 50


def reference_answer(text: str, answer_format: str) -> str | None:
    """The final answer inside a dataset's answer field (None if it has none)."""
    if answer_format == "gsm8k":
        _, sep, tail = text.rpartition("####")
        return tail.strip().replace(",", "") or None if sep else None
    if answer_format == "boxed":
        return extract_boxed(text)
    return text.strip() or None


def load_source(source: Mapping[str, Any], where: str):
    """``datasets.load_dataset(**source)`` with an error that says how to work offline."""
    import datasets

    try:
        return datasets.load_dataset(**dict(source))
    except Exception as err:
        cause = f"{type(err).__name__}: {str(err)[:300]}"
        if err.__cause__ is not None:  # datasets wraps the parser's error: show the one that says what is wrong
            cause += f" <- {type(err.__cause__).__name__}: {str(err.__cause__)[:300]}"
        if source.get("data_files"):
            raise DataError(f"{where}: could not read {source['data_files']} as {source.get('path')} ({cause})") from err
        raise DataError(
            f"{where}={dict(source)} could not be loaded ({cause}). Offline? Download the dataset once "
            f"(`huggingface-cli download --repo-type dataset {source.get('path')}`) or point {where} at local files, "
            "e.g. {path: parquet, data_files: /data/train.parquet, split: train} (path: json for .jsonl files)") from err


class HFDatasetTask(Task):
    """Splits from ``datasets`` sources; rewards by math-verify against the reference answer."""

    name = "hf_dataset"

    def __init__(self, sources: Mapping[str, Mapping[str, Any]], prompt_field: str = "question",
                 answer_field: str = "answer", answer_format: str = "gsm8k", instruction: str = "",
                 val_per_mille: int = VAL_PER_MILLE_DEFAULT, max_rows: int | None = None, on_bad_row: str = "error",
                 max_prompt_chars: int | None = 16000, verify_timeout_s: float = 2.0) -> None:
        super().__init__()
        if answer_format not in ANSWER_FORMATS:
            raise ValueError(f"task.answer_format={answer_format!r}; valid: {', '.join(ANSWER_FORMATS)}")
        if on_bad_row not in BAD_ROW_POLICIES:
            raise ValueError(f"task.on_bad_row={on_bad_row!r}; valid: {', '.join(BAD_ROW_POLICIES)}")
        if not verify_timeout_s > 0:
            raise ValueError(f"task.verify_timeout_s={verify_timeout_s} must be > 0 (seconds one check may take)")
        unknown = sorted(set(sources) - {"train", "val", "test"})
        if unknown or "train" not in sources:
            raise ValueError(f"task.sources has {sorted(sources)}; it needs train and may have val and test")
        self.instruction = instruction  # appended by Task.prompt_text
        self.verify_timeout_s = float(verify_timeout_s)
        self.skipped: dict[str, list[str]] = {}
        for split, source in sources.items():
            rows = load_source(source, f"task.sources.{split}")
            queries, bad = self._queries(rows, split, prompt_field, answer_field, answer_format, max_rows,
                                         max_prompt_chars, on_bad_row)
            if bad:
                self.skipped[split] = bad
                report_skipped(bad, f"task.sources.{split}")
            self._splits[split] = queries
        if "val" not in sources:  # carve val out of train by id hash: stable, never overlapping
            train = self._splits["train"]
            self._splits["val"] = [q for q in train if int(q.id, 16) % 1000 < val_per_mille]
            self._splits["train"] = [q for q in train if int(q.id, 16) % 1000 >= val_per_mille]
        start_worker()  # math-verify's worker, in the background: the first check need not wait for it

    @staticmethod
    def _queries(rows, split, prompt_field, answer_field, answer_format, max_rows, max_prompt_chars, on_bad_row):
        queries: list[Query] = []
        bad: list[str] = []
        seen: dict[str, int] = {}
        for index, row in enumerate(rows):
            if max_rows and len(queries) >= max_rows:
                break
            where = f"task.sources.{split} row {index}"
            try:
                prompt = field_text(row, prompt_field, where)
                check_prompt_length(prompt, where, prompt_field, max_prompt_chars)
                answer = field_text(row, answer_field, where)
                final = reference_answer(answer, answer_format)
                if final is None:
                    raise DataError(f"{where}: field {answer_field!r} holds no {answer_format} answer")
                qid = query_id(prompt)
                if qid in seen:
                    raise DataError(f"{where}: duplicate prompt (first seen in row {seen[qid]})")
            except DataError as err:
                if on_bad_row == "error":
                    raise
                bad.append(str(err))
                continue
            seen[qid] = index
            queries.append(Query(id=qid, prompt=prompt, answer=final, meta={"row": index}))
        if not queries:
            raise DataError(f"task.sources.{split}: no usable rows" + (f" ({len(bad)} skipped)" if bad else ""))
        return queries, bad

    def score(self, query: Query, completion: str) -> float:
        return 1.0 if math_match(completion, query.answer, self.verify_timeout_s) else 0.0
