"""A user's own JSON-lines data: one object per line with a prompt and an answer field.

Every malformed row fails loudly with the file, the line number and the field, so a user
never trains on silently dropped or mangled data.
"""

from __future__ import annotations

import json
from pathlib import Path

from sgpo.tasks.answers import integers_match
from sgpo.tasks.base import Query, Task, query_id

ANSWER_TYPES = ("integer", "exact")


class DataError(ValueError):
    """A malformed data row; the message names the file, line and field."""


def _field(row: dict, name: str, path: Path, line: int) -> str:
    if name not in row:
        raise DataError(f"{path}:{line}: missing field {name!r} (fields present: {sorted(row)})")
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"{path}:{line}: field {name!r} must be a string or a number, got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise DataError(f"{path}:{line}: field {name!r} is empty")
    return text


def read_jsonl(path: str | Path, prompt_field: str, answer_field: str, id_field: str | None = None) -> list[Query]:
    """Queries from a JSON-lines file; blank lines are allowed, anything else malformed raises."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"jsonl task: no such file {path}")
    queries: list[Query] = []
    seen: dict[str, int] = {}
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}:{line_no}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{line_no}: bad JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
            prompt = _field(row, prompt_field, path, line_no)
            answer = _field(row, answer_field, path, line_no)
            qid = _field(row, id_field, path, line_no) if id_field else query_id(prompt)
            if qid in seen:
                raise DataError(f"{path}:{line_no}: duplicate id {qid!r} (first seen on line {seen[qid]})")
            seen[qid] = line_no
            queries.append(Query(id=qid, prompt=prompt, answer=answer, meta={"line": line_no}))
    if not queries:
        raise DataError(f"{path}: no rows")
    return queries


class JsonlTask(Task):
    """Splits from JSON-lines files; ``answer_type`` picks the verifier (integer or exact string)."""

    name = "jsonl"

    def __init__(self, train_path: str, val_path: str | None = None, test_path: str | None = None,
                 prompt_field: str = "prompt", answer_field: str = "answer", id_field: str | None = None,
                 answer_type: str = "integer") -> None:
        super().__init__()
        if answer_type not in ANSWER_TYPES:
            raise ValueError(f"task.answer_type={answer_type!r}; valid: {', '.join(ANSWER_TYPES)}")
        self.answer_type = answer_type
        for split, path in (("train", train_path), ("val", val_path), ("test", test_path)):
            if path:
                self._splits[split] = read_jsonl(path, prompt_field, answer_field, id_field)

    def score(self, query: Query, completion: str) -> float:
        if self.answer_type == "integer":
            return 1.0 if integers_match(completion, query.answer) else 0.0
        return 1.0 if completion.strip() == query.answer.strip() else 0.0
