"""The embedded task: integer arithmetic problems generated from a seed.

A problem is ``"<a><op><b>="`` (e.g. ``"4821+9305="``) and its answer the integer result. A
problem's digit count is drawn uniformly from ``[min_digits, max_digits]`` and both operands
have that many digits, so the digit count is the difficulty knob: the shipped policy solves
short sums nearly always and long ones rarely.

Splits never overlap: a problem's split is a function of its id (a hash of its text), so the
same problem can only ever land in one split, whatever the seed or the split sizes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sgpo.tasks.answers import integers_match
from sgpo.tasks.base import Query, Task, query_id
from sgpo.tasks.difficulty_pool import draw_by_difficulty, load_pool_file

OPERATORS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
# Share of the id space (out of 1000) owned by each split; train owns the rest.
TEST_PER_MILLE = 100
VAL_PER_MILLE = 100


@dataclass(frozen=True)
class ArithmeticConfig:
    """Generator knobs; see conf/task/arithmetic.yaml for the documented defaults."""

    seed: int = 0
    num_train: int = 2048
    num_val: int = 256
    num_test: int = 512
    min_digits: int = 1
    max_digits: int = 5
    operators: tuple[str, ...] = ("+",)

    def __post_init__(self) -> None:
        if not 1 <= self.min_digits <= self.max_digits <= 18:
            raise ValueError(
                f"task.min_digits={self.min_digits}, task.max_digits={self.max_digits}: "
                "need 1 <= min_digits <= max_digits <= 18"
            )
        bad = [op for op in self.operators if op not in OPERATORS]
        if bad or not self.operators:
            raise ValueError(f"task.operators={list(self.operators)}: each must be one of {sorted(OPERATORS)}")
        for key in ("num_train", "num_val", "num_test"):
            if getattr(self, key) < 0:
                raise ValueError(f"task.{key}={getattr(self, key)} must be >= 0")


def split_of(problem_id: str) -> str:
    """The split a problem belongs to, from its id alone."""
    bucket = int(problem_id, 16) % 1000
    if bucket < TEST_PER_MILLE:
        return "test"
    if bucket < TEST_PER_MILLE + VAL_PER_MILLE:
        return "val"
    return "train"


def _operand(rng: random.Random, digits: int) -> int:
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(low, 10**digits - 1)


def sample_problem(rng: random.Random, cfg: ArithmeticConfig) -> Query:
    """One random problem (any split)."""
    digits = rng.randint(cfg.min_digits, cfg.max_digits)
    a, b = _operand(rng, digits), _operand(rng, digits)
    op = rng.choice(cfg.operators)
    prompt = f"{a}{op}{b}="
    return Query(id=query_id(prompt), prompt=prompt, answer=str(OPERATORS[op](a, b)),
                 meta={"digits": digits, "op": op})


def problem_stream(cfg: ArithmeticConfig, split: str, seed: int) -> Iterator[Query]:
    """An endless stream of problems of one split (repeats possible), e.g. for warm-start SFT."""
    rng = random.Random(seed)
    while True:
        q = sample_problem(rng, cfg)
        if split_of(q.id) == split:
            yield q


def generate_splits(cfg: ArithmeticConfig) -> dict[str, list[Query]]:
    """Distinct problems for every split, deterministic in ``cfg``.

    Raises ValueError when the digit range holds too few distinct problems for the sizes asked.
    """
    want = {"train": cfg.num_train, "val": cfg.num_val, "test": cfg.num_test}
    splits: dict[str, list[Query]] = {name: [] for name in want}
    seen: set[str] = set()
    rng = random.Random(cfg.seed)
    draws, max_draws = 0, 200 * (sum(want.values()) + 1)
    while any(len(splits[s]) < n for s, n in want.items()):
        draws += 1
        if draws > max_draws:
            have = {s: len(v) for s, v in splits.items()}
            raise ValueError(
                f"arithmetic task: only found {have} distinct problems for {want} after {max_draws} "
                "draws; widen task.min_digits/task.max_digits or lower task.num_train/num_val/num_test"
            )
        q = sample_problem(rng, cfg)
        if q.id in seen:
            continue
        seen.add(q.id)
        s = split_of(q.id)
        if len(splits[s]) < want[s]:
            splits[s].append(q)
    return splits


class ArithmeticTask(Task):
    """Generated arithmetic with an exact-match integer verifier (reward 0/1)."""

    name = "arithmetic"

    def __init__(self, seed: int = 0, num_train: int = 2048, num_val: int = 256, num_test: int = 512,
                 min_digits: int = 1, max_digits: int = 5, operators: Sequence[str] = ("+",),
                 pool: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.config = ArithmeticConfig(seed, num_train, num_val, num_test, min_digits, max_digits, tuple(operators))
        if pool is None:
            self._splits = generate_splits(self.config)
            return
        # a train split drawn by difficulty from a larger pool (sgpo/tasks/difficulty_pool.py); the
        # val and test splits are the same problems as without a pool (each split fills independently)
        unknown = set(pool) - {"file", "candidates", "shares"}
        if unknown:
            raise ValueError(f"task.pool: unknown keys {sorted(unknown)}; valid: file, candidates, shares")
        candidates = int(pool["candidates"])
        if candidates < num_train:
            raise ValueError(f"task.pool.candidates={candidates} must be >= task.num_train={num_train}")
        self._splits = generate_splits(replace(self.config, num_train=candidates))
        counts = load_pool_file(pool["file"])
        self._splits["train"] = draw_by_difficulty(self._splits["train"], counts, pool["shares"], num_train, seed)

    def score(self, query: Query, completion: str) -> float:
        return 1.0 if integers_match(completion, query.answer) else 0.0
