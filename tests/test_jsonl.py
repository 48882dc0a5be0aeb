import json

import pytest

from sgpo.tasks import build_task
from sgpo.tasks.jsonl import DataError, read_jsonl


def write(tmp_path, lines, name="data.jsonl"):
    path = tmp_path / name
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\n")
    return path


def test_reads_rows_with_custom_fields(tmp_path):
    path = write(tmp_path, [json.dumps({"q": "2+2=", "a": 4}), "", json.dumps({"q": "3+3=", "a": "6"})])
    task = build_task({"type": "jsonl", "name": "mine", "train_path": str(path), "prompt_field": "q", "answer_field": "a"})
    qs = task.split("train")
    assert [(q.prompt, q.answer, q.meta["line"]) for q in qs] == [("2+2=", "4", 1), ("3+3=", "6", 3)]
    assert task.score(qs[0], "4") == 1.0 and task.score(qs[0], "5") == 0.0


@pytest.mark.parametrize("line, message", [
    ("{bad json", r"data.jsonl:2: bad JSON"),
    (json.dumps({"prompt": "x"}), r"data.jsonl:2: missing field 'answer'"),
    (json.dumps({"prompt": "  ", "answer": "1"}), r"data.jsonl:2: field 'prompt' is empty"),
    (json.dumps({"prompt": ["x"], "answer": "1"}), r"data.jsonl:2: field 'prompt' must be a string"),
    (json.dumps({"prompt": "x", "answer": None}), r"data.jsonl:2: field 'answer' must be a string"),
    (json.dumps([1, 2]), r"data.jsonl:2: expected a JSON object"),
    (b"\xff\xfe{}", r"data.jsonl:2: not valid UTF-8"),
    (json.dumps({"prompt": "1+1=", "answer": "2"}), r"data.jsonl:2: duplicate id"),
])
def test_malformed_row_names_file_line_and_field(tmp_path, line, message):
    path = write(tmp_path, [json.dumps({"prompt": "1+1=", "answer": "2"}), line])
    with pytest.raises(DataError, match=message):
        read_jsonl(path, "prompt", "answer")


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_jsonl(tmp_path / "nope.jsonl", "prompt", "answer")
    with pytest.raises(DataError, match="no usable rows"):
        read_jsonl(write(tmp_path, [""]), "prompt", "answer")


def test_unknown_answer_type_lists_valid(tmp_path):
    path = write(tmp_path, [json.dumps({"prompt": "a", "answer": "b"})])
    with pytest.raises(ValueError, match="integer, exact"):
        build_task({"type": "jsonl", "train_path": str(path), "answer_type": "fuzzy"})
