"""The task interface: queries, prompts and verifiable scoring.

A ``Task`` owns a dataset split into ``train`` / ``val`` / ``test`` lists of ``Query`` and a
verifier that scores a completion 0 or 1. Profiling and training only see this interface.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Query:
    """One verifiable problem.

    id: stable identifier (a hash of the problem for generated tasks).
    prompt: the text the policy is conditioned on (before any chat template).
    answer: the reference answer the verifier compares against.
    meta: free-form extras (difficulty knobs, source line) carried into profiles and reports.
    """

    id: str
    prompt: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def query_id(text: str) -> str:
    """A 16-hex-digit id from a problem's text: equal problems get equal ids."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def data_fingerprint(queries: Sequence[Query]) -> str:
    """A hash of (id, prompt, answer) of every query, in order: changes if any of them does."""
    digest = hashlib.sha256()
    for q in queries:
        digest.update(json.dumps([q.id, q.prompt, q.answer]).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


class Task:
    """Base class: subclasses fill ``self._splits`` and implement ``score``."""

    name: str = "task"

    def __init__(self) -> None:
        self._splits: dict[str, list[Query]] = {}
        self.instruction = ""  # tasks for chat models set an answer-format instruction

    def split(self, name: str) -> list[Query]:
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
        if name not in self._splits:
            raise KeyError(f"task {self.name!r} has no {name!r} split")
        return self._splits[name]

    def has_split(self, name: str) -> bool:
        return name in self._splits

    def prompt_text(self, query: Query) -> str:
        """The task's text for the policy: the prompt, then the instruction (if any) after a blank line.

        Chat models then wrap it in their template (sgpo/prompts.py).
        """
        return f"{query.prompt}\n\n{self.instruction}".strip() if self.instruction else query.prompt

    def score(self, query: Query, completion: str) -> float:
        """Reward of one completion: 1.0 if verified correct, else 0.0."""
        raise NotImplementedError

    def score_batch(self, queries: Sequence[Query], completions: Sequence[Sequence[str]]) -> list[list[float]]:
        """Rewards for ``completions[i][j]``, the j-th sample of ``queries[i]``."""
        return [[self.score(q, c) for c in cs] for q, cs in zip(queries, completions)]
