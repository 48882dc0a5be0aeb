"""A train split drawn by difficulty: the benchmark's easy and hard mixes.

A *selection profile* (samples per candidate query, made with seeds no training run uses, so the
noise of a run's own profile is not baked into its data) sorts candidates into three classes:
trivial (every sample solved it), unsolvable (none did) and mixed. A mix asks for shares of each
class; the train split takes that many candidates of each class, each class's picks drawn at random
under a seed, and keeps them in candidate order.

The selection profile lives in a small JSON file (``python -m sgpo.bench pool`` writes it under
``benchmarks/pools/``, plain or gzipped), so a mix is rebuilt from the repository alone:
``{"counts": {query_id: [successes, samples], ...}, ...provenance}``. Candidates may have different
sample counts: the pool confirms the extremes of a first pass with more samples.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from sgpo.tasks.base import Query

CLASSES = ("trivial", "mixed", "unsolvable")


def load_pool_file(path: str | Path) -> dict[str, tuple[int, int]]:
    """{query_id: (successes, samples)} from a selection-profile file; clear errors on bad files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"task.pool.file={path}: no such file (python -m sgpo.bench pool writes it)")
    try:
        raw = path.read_bytes()
        data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)  # .json or .json.gz
        counts = {str(q): (int(s), int(n)) for q, (s, n) in data["counts"].items()}
    except (ValueError, KeyError, TypeError, AttributeError, OSError, EOFError) as exc:
        raise ValueError(f"task.pool.file={path}: not a selection profile ({exc}); "
                         "expected {\"counts\": {query_id: [successes, samples]}}") from exc
    bad = [q for q, (s, n) in counts.items() if not (n >= 1 and 0 <= s <= n)]
    if bad:
        raise ValueError(f"task.pool.file={path}: every count must be [successes, samples] with 0 <= successes <= "
                         f"samples and samples >= 1 (first bad id: {bad[0]}: {list(counts[bad[0]])})")
    return counts


def class_of(successes: int, samples: int) -> str:
    return "trivial" if successes == samples else "unsolvable" if successes == 0 else "mixed"


def class_counts(shares: Mapping[str, float], total: int) -> dict[str, int]:
    """Whole counts per class summing to ``total``, proportional to ``shares`` (largest remainders;
    ties go to the class listed first in CLASSES)."""
    unknown = set(shares) - set(CLASSES)
    values = {c: float(shares.get(c, 0.0)) for c in CLASSES}
    if unknown or any(v < 0 for v in values.values()) or abs(sum(values.values()) - 1) > 1e-6:
        raise ValueError(f"task.pool.shares={dict(shares)}: give shares >= 0 of {', '.join(CLASSES)} summing to 1")
    exact = {c: values[c] * total for c in CLASSES}
    counts = {c: int(exact[c]) for c in CLASSES}
    by_remainder = sorted(CLASSES, key=lambda c: (-(exact[c] - counts[c]), CLASSES.index(c)))
    for c in by_remainder[: total - sum(counts.values())]:
        counts[c] += 1
    return counts


def draw_by_difficulty(candidates: Sequence[Query], counts: Mapping[str, tuple[int, int]], shares: Mapping[str, float],
                       total: int, seed: int, source: str = "task.pool") -> list[Query]:
    """``total`` candidates whose classes follow ``shares``, in candidate order.

    candidates: the pool, in draw order; every id must be in ``counts`` ((successes, samples)).
    Each class's picks are a seeded random subset of that class (``random.Random(seed)``).
    """
    missing = [q.id for q in candidates if q.id not in counts]
    if missing:
        raise ValueError(f"{source}: {len(missing)} of {len(candidates)} candidates have no count in the selection "
                         f"profile (first: {missing[0]}); remake it for this task (python -m sgpo.bench pool)")
    by_class: dict[str, list[int]] = {c: [] for c in CLASSES}
    for i, q in enumerate(candidates):
        by_class[class_of(*counts[q.id])].append(i)
    want = class_counts(shares, total)
    rng = random.Random(seed)
    picked: list[int] = []
    for c in CLASSES:
        if want[c] > len(by_class[c]):
            raise ValueError(f"{source}: shares ask for {want[c]} {c} queries of {total}, the pool has "
                             f"{len(by_class[c])} ({len(candidates)} candidates): raise task.pool.candidates "
                             f"or lower task.pool.shares.{c}")
        picked += rng.sample(by_class[c], want[c])
    return [candidates[i] for i in sorted(picked)]
