"""The rollout-engine interface shared by the ``hf`` and ``vllm`` engines.

Prompts go in as token ids (tokenised once by the caller), so both engines see the very same
ids, and completions come back with their ids, text, finish reason and length.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch


def derive_seed(seed: int, *path: int) -> int:
    """A well-mixed 62-bit seed for sub-stream ``path`` of ``seed`` (chunks, micro-batches, requests)."""
    text = ":".join(str(int(x)) for x in (seed, *path))
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


@dataclass(frozen=True)
class SamplingParams:
    """temperature 0 means greedy; max_new_tokens bounds each completion (EOS included)."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 16

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature} must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p} must be in (0, 1]")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={self.max_new_tokens} must be >= 1")


@dataclass(frozen=True)
class Completion:
    """One sampled continuation.

    token_ids: generated ids, EOS included when the model stopped, padding excluded.
    text: decoded text without special tokens.
    finish_reason: "stop" (emitted EOS) or "length" (hit max_new_tokens; counted as truncated).
    """

    token_ids: tuple[int, ...]
    text: str
    finish_reason: str

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


class Engine(Protocol):
    """``generate`` returns, per prompt, ``n`` completions in sampling order.

    shares_prompt: True when a prompt's forward pass is computed once for its n samples (the
    FLOPs ledger charges the prompt once per group then), False when every sample prefills it.
    """

    name: str
    shares_prompt: bool

    def generate(self, prompt_ids: Sequence[Sequence[int]], n: int, sampling: SamplingParams,
                 seed: int) -> list[list[Completion]]: ...

    def sync_weights(self, model: torch.nn.Module) -> None: ...
