"""Rollout batches: prompts + completions packed into padded tensors, and their token log-probs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class RolloutBatch:
    """B rollouts, right-padded to length L (prompt + completion).

    input_ids, attention_mask: [B, L]. loss_mask: [B, L-1], 1 where position t+1 is a completion
    token (log-probs are of next tokens). rewards, advantages: [B]. group_index: [B].
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    loss_mask: torch.Tensor
    rewards: torch.Tensor
    advantages: torch.Tensor
    group_index: torch.Tensor

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    @classmethod
    def empty(cls) -> RolloutBatch:
        """No rows (a rank that got no group this step)."""
        return cls(torch.zeros((0, 2), dtype=torch.long), torch.zeros((0, 2), dtype=torch.long),
                   torch.zeros((0, 1)), torch.zeros(0), torch.zeros(0), torch.zeros(0, dtype=torch.long))

    def select(self, rows: torch.Tensor) -> RolloutBatch:
        return RolloutBatch(*(t[rows] for t in (self.input_ids, self.attention_mask, self.loss_mask, self.rewards,
                                                self.advantages, self.group_index)))


def pack_rollouts(prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int,
                  rewards: Sequence[float], advantages: torch.Tensor, group_index: Sequence[int]) -> RolloutBatch:
    width = max(len(p) + len(c) for p, c in zip(prompts, completions))
    n = len(prompts)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    loss_mask = torch.zeros((n, width - 1), dtype=torch.float32)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        seq = list(p) + list(c)
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attn[i, : len(seq)] = 1
        loss_mask[i, len(p) - 1 : len(seq) - 1] = 1.0
    return RolloutBatch(ids, attn, loss_mask, torch.tensor(list(rewards), dtype=torch.float32), advantages,
                        torch.tensor(list(group_index), dtype=torch.long))


def token_logprobs(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   temperature: float = 1.0) -> torch.Tensor:
    """log pi(x_{t+1} | x_<=t) for every position: [B, L-1] (float32)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    if temperature and temperature != 1.0:
        logits = logits / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
