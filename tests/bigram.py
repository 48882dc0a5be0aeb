"""A bigram policy whose log-probs and gradients can be written down by hand (and a strict one that checks
and records how it is called), and a batch maker.

The next-token logits after token a are ``table[a]`` ([V] of a [V, V] table), so
log pi(b | a) = log_softmax(table[a])[b] and d log pi(b | a) / d table[a] = e_b - softmax(table[a]);
at table = 0 every probability is 1/V. Shared by tests/test_update_math.py and tests/test_batch.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from sgpo.rollouts import RolloutBatch, pack_rollouts

V = 3


class BigramLM(torch.nn.Module):
    """Causal LM interface of transformers (``model(input_ids=, attention_mask=).logits``)."""

    def __init__(self, table=None) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.zeros(V, V) if table is None else torch.tensor(table, dtype=torch.float32))

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=self.table[input_ids])


class StrictBigram(BigramLM):
    """A bigram policy that checks it is called like a transformers causal LM (2-D long ids of at least one
    row, an attention mask of the same shape) and records every call's ids and mask."""

    def __init__(self, table=None) -> None:
        super().__init__(table)
        self.calls = []

    def forward(self, input_ids, attention_mask=None):
        assert input_ids.dim() == 2 and input_ids.shape[0] >= 1 and input_ids.dtype == torch.long, input_ids
        assert isinstance(attention_mask, torch.Tensor) and attention_mask.shape == input_ids.shape, attention_mask
        self.calls.append((input_ids.tolist(), attention_mask.tolist()))
        return super().forward(input_ids, attention_mask)


def onehot(b: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(b), V).float()


def uniform_score(b: int) -> torch.Tensor:
    """d log pi(b | a) / d table[a] at table[a] = 0: e_b - 1/V."""
    return onehot(b) - 1.0 / V


def rows_batch(rows: list[tuple[list[int], list[int]]], advantages: list[float]) -> tuple[RolloutBatch, list[int]]:
    """(prompt ids, completion ids) per row, padded with token 0; returns the batch and prompt+completion lengths."""
    batch = pack_rollouts([p for p, _ in rows], [c for _, c in rows], 0, [0.0] * len(rows),
                          torch.tensor(advantages, dtype=torch.float32), [0] * len(rows))
    return batch, [len(p) + len(c) for p, c in rows]
