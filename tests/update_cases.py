"""A fixed rollout batch on the shipped tiny policy, and the gradient ``PolicyUpdater`` computes from it.

Shared by tests/test_update.py (skipping is exact) and tests/test_distributed.py (2 gloo
processes make one process's gradient), whose worker processes import it by name.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from sgpo.algos.advantages import group_advantages
from sgpo.algos.losses import LOSSES
from sgpo.algos.update import PolicyUpdater, sum_in_one_process
from sgpo.flops import FlopsLedger, ModelShape
from sgpo.rollouts import RolloutBatch, pack_rollouts

TINY = Path(__file__).resolve().parent.parent / "sgpo" / "assets" / "tiny_arith"

# The loss parameters of conf/loss/*.yaml (dr_grpo also turns std normalisation off).
LOSS_PARAMS = {
    "grpo": ({"eps": 0.2, "beta": 0.0}, True),
    "dr_grpo": ({"eps": 0.2, "beta": 0.0, "max_completion_tokens": 8}, False),
    "dapo": ({"eps_low": 0.2, "eps_high": 0.28, "beta": 0.0}, True),
}

# (prompt, group rewards): groups of unequal size; groups 1, 3 and 5 have zero variance.
GROUPS = [("12+34=", [1, 0, 1, 0]), ("5+5=", [1, 1]), ("123+456=", [0, 0, 1, 0, 1, 1, 0, 0]),
          ("9+9=", [0, 0, 0, 0]), ("77+11=", [1, 0]), ("4321+1234=", [0, 0, 0, 0, 0, 0, 0, 0])]


def load_tiny():
    from sgpo.models import load_policy

    policy, tokenizer = load_policy(str(TINY))
    policy.train()
    return policy, tokenizer


def completions_of(tokenizer, group: int, size: int) -> list[list[int]]:
    """Deterministic completions of different lengths (1-8 tokens), EOS-terminated when shorter than 8."""
    gen = torch.Generator().manual_seed(1000 + group)
    digits = [tokenizer.convert_tokens_to_ids(str(d)) for d in range(10)]
    out = []
    for _ in range(size):
        n = int(torch.randint(1, 9, (1,), generator=gen))
        ids = [digits[int(i)] for i in torch.randint(0, 10, (n,), generator=gen)]
        out.append(ids[:-1] + [tokenizer.eos_token_id] if n < 8 else ids)
    return out


def batch_of(tokenizer, groups: list[int], normalize_std: bool) -> tuple[RolloutBatch, list[int]]:
    """The rows of ``groups`` (indices into GROUPS), packed, with group-normalised advantages."""
    prompts, completions, rewards, index = [], [], [], []
    for j, g in enumerate(groups):
        prompt, rs = GROUPS[g]
        for c, r in zip(completions_of(tokenizer, g, len(rs)), rs):
            prompts.append(tokenizer(prompt).input_ids)
            completions.append(c)
            rewards.append(float(r))
            index.append(j)
    if not rewards:
        return RolloutBatch.empty(), []
    adv, _ = group_advantages(torch.tensor(rewards), torch.tensor(index), normalize_std=normalize_std)
    batch = pack_rollouts(prompts, completions, tokenizer.pad_token_id, rewards, adv, index)
    return batch, [len(p) + len(c) for p, c in zip(prompts, completions)]


def updater_for(policy, forward_module, loss: str, skip: bool, *, optimizer=None, iterations=1, minibatches=1,
                reduce=sum_in_one_process, world_size=1, grad_clip=1e9) -> PolicyUpdater:
    params, _ = LOSS_PARAMS[loss]
    optimizer = optimizer or torch.optim.SGD(policy.parameters(), lr=0.0)  # lr 0: p.grad is the result
    return PolicyUpdater(forward_module, optimizer, LOSSES.get(loss), params, iterations=iterations,
                         minibatches=minibatches, skip_zero_adv=skip, grad_clip=grad_clip, temperature=1.0,
                         ledger=FlopsLedger(0.0, reduce=None if world_size == 1 else reduce),
                         shape=ModelShape.from_config(policy.config), reduce=reduce, world_size=world_size)


def flat_grad(policy) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in policy.parameters()])


def flat_weights(policy) -> torch.Tensor:
    """The parameters in ``flat_grad``'s order, in float64."""
    return torch.cat([p.detach().flatten().double() for p in policy.parameters()])


def one_process_gradient(loss: str, skip: bool) -> torch.Tensor:
    policy, tokenizer = load_tiny()
    batch, lengths = batch_of(tokenizer, list(range(len(GROUPS))), LOSS_PARAMS[loss][1])
    updater_for(policy, policy, loss, skip).update(batch, lengths, seed=0)
    return flat_grad(policy)


# Splits of the groups over 2 ranks: both ranks with trainable and zero-variance groups (different
# row and token counts); one rank holding only zero-variance groups (no trainable rows); one rank
# holding no group at all.
SPLITS = {"mixed_on_both": ([0, 1, 4], [2, 3, 5]), "no_trainable_rows": ([0, 2, 4], [1, 3, 5]),
          "empty_rank": ([0, 1, 2, 3, 4, 5], [])}


DDP_LR = 1.0  # SGD's step in the DDP check: weights after the step = before - DDP_LR x gradient


def ddp_worker(rank: int, world_size: int, port: int, out: str) -> None:
    """One of 2 gloo processes: for every loss and split, this rank's share of the batch through a
    DDP-wrapped policy and one SGD step; each rank saves, to ``out`` + ``.rank<r>``, the all-reduced
    gradient, the number of updates and how far the step moved its weights."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)

    def reduce(values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    policy, tokenizer = load_tiny()
    initial = {k: v.clone() for k, v in policy.state_dict().items()}
    ddp = DistributedDataParallel(policy, forward_sync_buffers=False)
    grads = {}
    for loss, (_, normalize_std) in LOSS_PARAMS.items():
        for split, shares in SPLITS.items():
            policy.load_state_dict(initial)
            policy.zero_grad(set_to_none=True)
            before = flat_weights(policy)
            batch, lengths = batch_of(tokenizer, shares[rank], normalize_std)
            updater = updater_for(policy, ddp, loss, skip=True, reduce=reduce, world_size=world_size,
                                  optimizer=torch.optim.SGD(policy.parameters(), lr=DDP_LR))
            result = updater.update(batch, lengths, seed=0)
            grads[(loss, split)] = (flat_grad(policy), result.updates, flat_weights(policy) - before)
    torch.save(grads, f"{out}.rank{rank}")
    dist.barrier()
    dist.destroy_process_group()
