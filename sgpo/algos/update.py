"""``PolicyUpdater``: one rollout batch -> ``iterations`` x ``minibatches`` optimiser steps of the loss.

Normalisation is what makes skipping and DDP exact. Each pass permutes every row of the batch
and splits the permutation into minibatches; a minibatch's loss is normalised by the rows and
completion tokens of the *whole* minibatch, summed over every rank (``reduce``). So

* skipping zero-advantage rows (``skip_zero_adv``) only removes terms that are exactly zero:
  the gradient is the one of training on every row, and a minibatch whose rows all have zero
  advantage still takes its (zero-gradient) optimiser step, as it would with every row trained;
* with N processes each rank's loss is its share of the job-wide sum, multiplied by N because
  DDP averages the ranks' gradients: the update is the one a single process makes on the
  whole batch. A rank with nothing to train in a minibatch that others train joins with a
  zero-loss pass, so every rank makes the same collective calls.

Without a KL term a zero-advantage row's gradient is exactly zero; with one (``beta`` > 0) it is
not, so rows are never skipped then. A non-finite loss or gradient norm on any rank skips that
update on every rank and is counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from sgpo.algos.losses import BatchCounts
from sgpo.flops import FlopsLedger, ModelShape, sequence_forward_flops, sequence_train_flops
from sgpo.rollouts.batch import RolloutBatch, token_logprobs

log = logging.getLogger(__name__)

Reduce = Callable[[list[float]], list[float]]


def sum_in_one_process(values: list[float]) -> list[float]:
    """The cross-rank sum of a single process: the values themselves."""
    return list(values)


@dataclass
class UpdateResult:
    """updates: optimiser steps taken (zero_gradient_steps of them on minibatches whose rows all had
    zero advantage); skipped: steps skipped for a non-finite loss or gradient; trained_rows: rows
    whose forward and backward ran (summed over passes); metrics: the last step's."""

    updates: int = 0
    zero_gradient_steps: int = 0
    skipped: int = 0
    trained_rows: int = 0
    metrics: dict[str, float] = field(default_factory=dict)


def skips_zero_advantage(skip_zero_adv: bool, kl: bool) -> bool:
    """Whether zero-advantage rows go untrained: when asked (algo.skip_zero_adv) and no KL term
    gives them a gradient. The adaptive sampler's cost model asks the same (sgpo.training)."""
    return bool(skip_zero_adv) and not kl


class PolicyUpdater:
    """Runs the RL update of ``policy`` with ``optimizer`` on packed rollout batches.

    policy: the module the forward passes go through (under DDP the wrapped one, or one whose
      wrapper has prepared the reducer). loss_fn(logp, old, adv, mask, ref, counts=, **loss_params).
    reduce: sums a list of floats over ranks; world_size: number of ranks (DDP averages gradients).
    backward: how to backpropagate a loss (Lightning's ``manual_backward`` under a Trainer).
    ledger, shape: where train FLOPs are charged and the model shape that prices them.
    """

    def __init__(self, policy: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable,
                 loss_params: dict, *, iterations: int, minibatches: int, skip_zero_adv: bool, grad_clip: float,
                 temperature: float, ledger: FlopsLedger, shape: ModelShape, reference: torch.nn.Module | None = None,
                 reduce: Reduce = sum_in_one_process, world_size: int = 1,
                 backward: Callable[[torch.Tensor], None] | None = None) -> None:
        self.policy, self.optimizer, self.loss_fn, self.loss_params = policy, optimizer, loss_fn, dict(loss_params)
        self.iterations, self.minibatches = int(iterations), int(minibatches)
        self.grad_clip, self.temperature = float(grad_clip), float(temperature)
        self.reference, self.ledger, self.shape = reference, ledger, shape
        self.reduce, self.world_size = reduce, int(world_size)
        self.backward = backward or (lambda loss: loss.backward())
        self.use_kl = bool(self.loss_params.get("beta")) and reference is not None
        self.skip_zero_adv = skips_zero_advantage(skip_zero_adv, self.use_kl)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def update(self, batch: RolloutBatch, lengths: list[int], seed: int) -> UpdateResult:
        """Train on ``batch`` (B rows; ``lengths[i]`` = prompt + completion tokens of row i).

        ``seed`` orders the rows of each pass. Every rank must call this once per step, with its
        own rows (possibly none).
        """
        n = len(batch)
        trainable = batch.advantages != 0 if self.skip_zero_adv else torch.ones(n, dtype=torch.bool)
        result = UpdateResult()
        old = self._frozen_logprobs(self.policy, batch, trainable, lengths) if self.iterations > 1 else None
        ref = self._frozen_logprobs(self.reference, batch, trainable, lengths) if self.use_kl else None
        generator = torch.Generator().manual_seed(seed)
        for _ in range(self.iterations):
            order = torch.randperm(n, generator=generator)
            for rows in torch.tensor_split(order, self.minibatches):
                self._minibatch(batch, rows, trainable, old, ref, lengths, result)
        return result

    def _frozen_logprobs(self, model, batch: RolloutBatch, trainable: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """Log-probs [B, L-1] of the trainable rows under a frozen model (the rollout-time policy or the
        reference; other rows stay 0), charged as forward passes."""
        rows = torch.nonzero(trainable).flatten()
        out = torch.zeros(batch.loss_mask.shape)
        if len(rows):
            with torch.no_grad():
                out[rows] = token_logprobs(model, batch.input_ids[rows], batch.attention_mask[rows], self.temperature)
            self._charge(rows, batch.advantages[rows], lengths, sequence_forward_flops)
        return out

    def _minibatch(self, batch: RolloutBatch, rows: torch.Tensor, trainable: torch.Tensor, old, ref,
                   lengths: list[int], result: UpdateResult) -> None:
        train_rows = rows[trainable[rows]]
        total_rows, total_tokens, total_trainable, total_learning = self.reduce(
            [float(len(rows)), float(batch.loss_mask[rows].sum()), float(len(train_rows)),
             float((batch.advantages[train_rows] != 0).sum())])
        if total_rows == 0:  # no rank has a row in this minibatch: no step, with or without skipping
            return
        if total_trainable == 0:
            # Every row has zero advantage: training on them gives exactly zero gradient, and the
            # optimiser still steps (its moments move). Do that without the forward and backward.
            self._zero_gradient_step(result)
            return
        counts = BatchCounts(rows=total_rows, tokens=total_tokens)
        if len(train_rows):
            mb = batch.select(train_rows)
            logp = token_logprobs(self.policy, mb.input_ids, mb.attention_mask, self.temperature)
            old_mb = old[train_rows] if old is not None else logp.detach()
            ref_mb = ref[train_rows] if ref is not None else None
            loss, metrics = self.loss_fn(logp, old_mb, mb.advantages, mb.loss_mask, ref_mb, counts=counts,
                                         **self.loss_params)
            self._charge(train_rows, mb.advantages, lengths)
        else:  # others train in this minibatch: join their gradient all-reduce with a zero loss
            loss, metrics = self._null_loss(batch, rows), {}
        finite = self.reduce([float(not bool(torch.isfinite(loss)))])[0] == 0  # one rank's NaN skips everywhere
        self.optimizer.zero_grad(set_to_none=True)
        if not finite:
            result.skipped += 1
            log.warning("non-finite loss (%s): update skipped", float(loss.detach()))
            return
        # DDP averages gradients over ranks; each rank's loss is its share of the job-wide sum.
        self.backward(loss * self.world_size)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters(), self.grad_clip)
        if not torch.isfinite(grad_norm):
            result.skipped += 1
            log.warning("non-finite gradient norm: update skipped")
            self.optimizer.zero_grad(set_to_none=True)
            return
        self.optimizer.step()
        result.updates += 1
        # trained on zero-advantage rows only (skipping off) without KL: the gradient was exactly zero
        result.zero_gradient_steps += int(total_learning == 0 and not self.use_kl)
        result.trained_rows += len(train_rows)
        result.metrics = {**metrics, "actor/grad_norm": float(grad_norm), "actor/loss": float(loss.detach())}

    def _null_loss(self, batch: RolloutBatch, rows: torch.Tensor) -> torch.Tensor:
        """A zero loss through one forward of the policy (every parameter gets a zero gradient, so
        this rank takes part in the gradient all-reduce). Uses a row of the batch, or one token."""
        if len(rows) or len(batch):
            row = batch.select(rows[:1] if len(rows) else torch.arange(1))
            ids, mask = row.input_ids, row.attention_mask
        else:  # this rank got no group at all this step
            ids = torch.zeros((1, 2), dtype=torch.long)
            mask = torch.ones_like(ids)
        return token_logprobs(self.policy, ids, mask, self.temperature).sum() * 0.0

    def _zero_gradient_step(self, result: UpdateResult) -> None:
        for p in self.parameters():
            p.grad = torch.zeros_like(p)
        self.optimizer.step()
        result.updates += 1
        result.zero_gradient_steps += 1
        result.metrics = {"actor/grad_norm": 0.0, "actor/loss": 0.0}

    def _charge(self, rows: torch.Tensor, advantages: torch.Tensor, lengths: list[int],
                price: Callable = sequence_train_flops) -> None:
        """Charge ``price`` (forward + backward, or a forward) of ``rows`` as train FLOPs, and as
        wasted for rows with zero advantage (trained only when skipping is off)."""
        for i, a in zip(rows.tolist(), advantages.tolist()):
            flops = price(self.shape, lengths[i])
            self.ledger.charge("train", flops)
            if a == 0:
                self.ledger.charge("wasted", flops)
