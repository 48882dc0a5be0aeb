"""A user's own JSON-lines data: one object per line with a prompt and an answer field.

By default every malformed row fails loudly with the file, the line number and the field, so a
user never trains on silently dropped or mangled data. With ``on_bad_row="skip"`` malformed
rows are skipped instead, and a warning says how many and which (file:line: reason); the list is
kept on the task (``task.skipped``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sgpo.tasks.answers import integers_match
from sgpo.tasks.base import Query, Task, query_id

log = logging.getLogger(__name__)

ANSWER_TYPES = ("integer", "exact")
BAD_ROW_POLICIES = ("error", "skip")


class DataError(ValueError):
    """A malformed data row; the message names the file, line and field."""


def field_text(row: dict, name: str, where: str) -> str:
    """``row[name]`` as non-empty text; DataError naming ``where`` (file:line or split row) and the field."""
    if name not in row:
        raise DataError(f"{where}: missing field {name!r} (fields present: {sorted(row)})")
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"{where}: field {name!r} must be a string or a number, got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise DataError(f"{where}: field {name!r} is empty")
    return text


def check_prompt_length(prompt: str, where: str, field: str, max_prompt_chars: int | None) -> None:
    if max_prompt_chars and len(prompt) > max_prompt_chars:
        raise DataError(f"{where}: field {field!r} is {len(prompt)} characters, above task.max_prompt_chars={max_prompt_chars}")


def report_skipped(bad: list[str], source: str) -> None:
    """Warn how many rows of ``source`` were skipped and which (the first ten reasons)."""
    shown = "; ".join(bad[:10]) + (f"; ... ({len(bad) - 10} more)" if len(bad) > 10 else "")
    log.warning("task.on_bad_row=skip: skipped %d malformed rows of %s: %s", len(bad), source, shown)


def _parse_row(raw: bytes, path: Path, line_no: int, prompt_field: str, answer_field: str, id_field: str | None,
               max_prompt_chars: int | None) -> Query | None:
    """One line -> a Query (None for a blank line); raises DataError naming file:line and field."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}:{line_no}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    if not text.strip():
        return None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{line_no}: bad JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(row, dict):
        raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
    where = f"{path}:{line_no}"
    prompt = field_text(row, prompt_field, where)
    check_prompt_length(prompt, where, prompt_field, max_prompt_chars)
    answer = field_text(row, answer_field, where)
    qid = field_text(row, id_field, where) if id_field else query_id(prompt)
    return Query(id=qid, prompt=prompt, answer=answer, meta={"line": line_no})


def read_jsonl(path: str | Path, prompt_field: str, answer_field: str, id_field: str | None = None,
               on_bad_row: str = "error", max_prompt_chars: int | None = None,
               skipped: list[str] | None = None) -> list[Query]:
    """Queries from a JSON-lines file; blank lines are allowed.

    ``on_bad_row="error"`` raises on the first malformed row; ``"skip"`` leaves it out and
    appends ``"file:line: reason"`` to ``skipped``.
    """
    if on_bad_row not in BAD_ROW_POLICIES:
        raise ValueError(f"task.on_bad_row={on_bad_row!r}; valid: {', '.join(BAD_ROW_POLICIES)}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"jsonl task: no such file {path}")
    skipped = [] if skipped is None else skipped
    queries: list[Query] = []
    seen: dict[str, int] = {}
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                query = _parse_row(raw, path, line_no, prompt_field, answer_field, id_field, max_prompt_chars)
                if query is not None and query.id in seen:
                    raise DataError(f"{path}:{line_no}: duplicate id {query.id!r} (first seen on line {seen[query.id]})")
            except DataError as err:
                if on_bad_row == "error":
                    raise
                skipped.append(str(err))
                continue
            if query is not None:
                seen[query.id] = line_no
                queries.append(query)
    if not queries:
        raise DataError(f"{path}: no usable rows" + (f" ({len(skipped)} skipped as malformed)" if skipped else ""))
    return queries


class JsonlTask(Task):
    """Splits from JSON-lines files; ``answer_type`` picks the verifier (integer or exact string)."""

    name = "jsonl"

    def __init__(self, train_path: str, val_path: str | None = None, test_path: str | None = None,
                 prompt_field: str = "prompt", answer_field: str = "answer", id_field: str | None = None,
                 answer_type: str = "integer", on_bad_row: str = "error", max_prompt_chars: int | None = 16000) -> None:
        super().__init__()
        if answer_type not in ANSWER_TYPES:
            raise ValueError(f"task.answer_type={answer_type!r}; valid: {', '.join(ANSWER_TYPES)}")
        self.answer_type = answer_type
        self.skipped: dict[str, list[str]] = {}
        for split, path in (("train", train_path), ("val", val_path), ("test", test_path)):
            if path:
                bad: list[str] = []
                self._splits[split] = read_jsonl(path, prompt_field, answer_field, id_field, on_bad_row,
                                                 max_prompt_chars, bad)
                if bad:
                    self.skipped[split] = bad
                    report_skipped(bad, f"{path} ({split} split)")

    def score(self, query: Query, completion: str) -> float:
        if self.answer_type == "integer":
            return 1.0 if integers_match(completion, query.answer) else 0.0
        return 1.0 if completion.strip() == query.answer.strip() else 0.0
