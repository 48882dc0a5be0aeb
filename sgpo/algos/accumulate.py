"""Mixed groups gathered over rollout steps until an update rests on enough of them
(``algo.min_mixed_groups``).

Why: under Adam every optimiser step moves the weights by about the learning rate, whatever the
batch holds, so a step trained on one or two mixed groups is as large as one trained on thirty and
mostly noise. When the sampler finds few mixed groups a step (on the benchmark's easy mix 97% of
method=sgpo_every_step's (then sgpo's) groups were degenerate late in training, one or two mixed
groups a step), those steps add up to a drift that lowered held-out accuracy below its start.
Holding the mixed groups until K are gathered makes every update rest on at least K of them (DAPO
gets the same by refilling its step). The policy does not change while rows wait, so they stay
on-policy.

Shapes: B rows, L tokens (prompt + completion, right-padded); see ``RolloutBatch``.
"""

from __future__ import annotations

from typing import Any

import torch

from sgpo.rollouts.batch import RolloutBatch


def mixed_group_rows(batch: RolloutBatch) -> torch.Tensor:
    """[B] bool: the rows of groups with some non-zero advantage (a degenerate group's are all 0)."""
    if len(batch) == 0:
        return torch.zeros(0, dtype=torch.bool)
    groups = int(batch.group_index.max()) + 1
    informative = torch.zeros(groups, dtype=torch.long).index_add_(
        0, batch.group_index, (batch.advantages != 0).long())
    return informative[batch.group_index] > 0


def count_groups(batch: RolloutBatch) -> int:
    """Distinct groups among the rows of ``batch``."""
    return int(torch.unique(batch.group_index).numel())


def concat_batches(batches: list[RolloutBatch], pad_id: int) -> RolloutBatch:
    """One batch of all rows, right-padded to the widest [sum B, max L]; group indices are offset
    so that groups of different batches stay apart."""
    batches = [b for b in batches if len(b)]
    if not batches:
        return RolloutBatch.empty()
    width = max(b.input_ids.shape[1] for b in batches)
    ids, attn, loss_mask, group_index = [], [], [], []
    offset = 0
    for b in batches:
        extra = width - b.input_ids.shape[1]
        ids.append(torch.nn.functional.pad(b.input_ids, (0, extra), value=pad_id))
        attn.append(torch.nn.functional.pad(b.attention_mask, (0, extra), value=0))
        loss_mask.append(torch.nn.functional.pad(b.loss_mask, (0, extra), value=0.0))
        group_index.append(b.group_index + offset)
        offset += int(b.group_index.max()) + 1
    return RolloutBatch(torch.cat(ids), torch.cat(attn), torch.cat(loss_mask),
                        torch.cat([b.rewards for b in batches]), torch.cat([b.advantages for b in batches]),
                        torch.cat(group_index))


class PendingGroups:
    """This rank's mixed groups that wait for an update, and each row's prompt + completion length.

    ``add`` keeps only the mixed groups of a step's packed batch (degenerate ones carry no
    gradient without a KL term); ``take`` hands back every waiting row as one batch and empties
    the store. Whether to update is decided job-wide by the caller (every rank must update on the
    same steps): ``groups`` summed over ranks against ``algo.min_mixed_groups``.
    """

    def __init__(self, pad_id: int) -> None:
        self.pad_id = int(pad_id)
        self.batches: list[RolloutBatch] = []
        self.lengths: list[list[int]] = []
        self.groups = 0

    def add(self, batch: RolloutBatch, lengths: list[int]) -> None:
        keep = mixed_group_rows(batch)
        if not bool(keep.any()):
            return
        rows = torch.nonzero(keep).flatten()
        kept = batch.select(rows)
        self.batches.append(kept)
        self.lengths.append([lengths[i] for i in rows.tolist()])
        self.groups += count_groups(kept)

    def take(self) -> tuple[RolloutBatch, list[int]]:
        batch = concat_batches(self.batches, self.pad_id)
        lengths = [n for step in self.lengths for n in step]
        self.batches, self.lengths, self.groups = [], [], 0
        return batch, lengths

    def state_dict(self) -> dict[str, Any]:
        fields = ("input_ids", "attention_mask", "loss_mask", "rewards", "advantages", "group_index")
        return {"batches": [{f: getattr(b, f) for f in fields} for b in self.batches], "lengths": self.lengths,
                "groups": self.groups}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batches = [RolloutBatch(**b) for b in state["batches"]]
        self.lengths = [list(x) for x in state["lengths"]]
        self.groups = int(state["groups"])
