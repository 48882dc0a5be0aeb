
import pytest

from sgpo.tasks import build_task
from sgpo.tasks.arithmetic import ArithmeticConfig, ArithmeticTask, generate_splits, problem_stream, split_of
from sgpo.tasks.base import query_id


def test_generator_is_deterministic_and_seeded():
    a = generate_splits(ArithmeticConfig(seed=3, num_train=50, num_val=10, num_test=10))
    b = generate_splits(ArithmeticConfig(seed=3, num_train=50, num_val=10, num_test=10))
    c = generate_splits(ArithmeticConfig(seed=4, num_train=50, num_val=10, num_test=10))
    assert a == b
    assert a["train"] != c["train"]


def test_splits_are_disjoint_sized_and_ids_hash_the_problem():
    task = ArithmeticTask(num_train=300, num_val=40, num_test=60)
    ids = {s: {q.id for q in task.split(s)} for s in ("train", "val", "test")}
    assert [len(ids[s]) for s in ("train", "val", "test")] == [300, 40, 60]
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    for s in ("train", "val", "test"):
        for q in task.split(s):
            assert q.id == query_id(q.prompt) and split_of(q.id) == s


def test_splits_never_overlap_across_seeds_and_sizes():
    small = ArithmeticTask(seed=1, num_train=100, num_val=20, num_test=20)
    big = ArithmeticTask(seed=9, num_train=400, num_val=50, num_test=50)
    assert not {q.id for q in small.split("train")} & {q.id for q in big.split("test")}


def test_answers_are_correct_and_digits_respected():
    task = ArithmeticTask(num_train=200, num_val=10, num_test=10, min_digits=2, max_digits=3, operators=("+", "-", "*"))
    for q in task.split("train"):
        a, op, b = None, None, None
        for symbol in "+-*":
            if symbol in q.prompt:
                a, b = q.prompt.rstrip("=").split(symbol)
                op = symbol
        assert op == q.meta["op"] and 2 <= len(a) <= 3 and len(a) == len(b) == q.meta["digits"]
        expected = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
        assert q.answer == str(expected)
        assert task.score(q, q.answer) == 1.0
        assert task.score(q, str(expected + 1)) == 0.0


def test_verifier_exact_integer_match():
    task = ArithmeticTask(num_train=5, num_val=1, num_test=1)
    q = task.split("train")[0]
    assert task.score(q, f"{q.answer}") == 1.0
    assert task.score(q, f" {q.answer} and more") == 1.0
    assert task.score(q, f"0{q.answer}") == 1.0  # leading zeros are the same integer
    assert task.score(q, "") == 0.0
    assert task.score(q, "abc") == 0.0
    assert task.score(q, f"{q.answer}1") == 0.0


def test_stream_stays_in_its_split():
    stream = problem_stream(ArithmeticConfig(), "train", seed=0)
    assert all(split_of(next(stream).id) == "train" for _ in range(200))


@pytest.mark.parametrize("kwargs, key", [
    (dict(min_digits=0), "min_digits"),
    (dict(min_digits=4, max_digits=2), "max_digits"),
    (dict(operators=("/",)), "task.operators"),
    (dict(num_train=-1), "task.num_train"),
])
def test_bad_generator_config_names_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        ArithmeticTask(**kwargs)


def test_too_small_problem_space_is_a_clear_error():
    with pytest.raises(ValueError, match="distinct problems"):
        ArithmeticTask(num_train=500, num_val=10, num_test=10, min_digits=1, max_digits=1)


def test_build_task_by_name_and_unknown_name_lists_valid():
    assert build_task({"type": "arithmetic", "name": "arithmetic", "num_train": 5, "num_val": 1, "num_test": 1})
    with pytest.raises(KeyError, match="arithmetic, hf_dataset, jsonl, reasoning_gym"):
        build_task({"type": "nope"})


def test_random_digit_mix_covers_every_difficulty():
    task = ArithmeticTask(num_train=500, num_val=10, num_test=10)
    assert {q.meta["digits"] for q in task.split("train")} == {1, 2, 3, 4, 5}
