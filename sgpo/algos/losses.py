"""Policy-gradient losses of the GRPO family as pure tensor functions returning (loss, metrics).

Shapes: B rollouts, T completion tokens (right-padded).
    logprobs, old_logprobs, ref_logprobs: [B, T] log pi(token) under the current, rollout-time
    and reference policies; mask: [B, T] 1 on completion tokens; advantages: [B].

The clipped surrogate per token is  -min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A)
with rho = exp(logprobs - old_logprobs); with one update per rollout batch rho = 1 and it is the
plain policy gradient. The optional KL to a reference uses the k3 estimator
exp(ref - logp) - (ref - logp) - 1 (always >= 0), weighted by ``beta``.

How token terms aggregate is the one thing that differs between the losses (``aggregate``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from sgpo.registry import Registry

LOSSES: Registry[Callable] = Registry("loss")


@dataclass(frozen=True)
class BatchCounts:
    """Sizes of the whole batch a loss is normalised by: its rollouts and completion tokens.

    A loss computed on part of a batch (zero-advantage rows skipped, a rank's share under DDP)
    divides by the counts of the whole batch, so the parts' gradients add up to the gradient
    of the whole: skipping is a pure compute saving and N processes make one process's update.
    """

    rows: float
    tokens: float

    @classmethod
    def of(cls, mask: torch.Tensor) -> BatchCounts:
        """The counts of ``mask`` [B, T] itself (the batch is the whole batch)."""
        return cls(rows=float(mask.shape[0]), tokens=float(mask.sum()))


def aggregate(values: torch.Tensor, mask: torch.Tensor, mode: str, counts: BatchCounts | None = None,
              normalizer: float | None = None) -> torch.Tensor:
    """Reduce [B, T] token values to a scalar, normalised by the whole batch's ``counts``.

    seq-mean-token-mean:     sum over sequences of each sequence's token mean / rows (GRPO).
    token-mean:              sum over all tokens / tokens (DAPO).
    seq-mean-token-sum-norm: sum over all tokens / (rows * normalizer), a constant (Dr. GRPO).
    ``counts`` defaults to the counts of ``mask`` (these rows are the whole batch).
    """
    counts = counts if counts is not None else BatchCounts.of(mask)
    mask = mask.to(values.dtype)
    if mode == "seq-mean-token-mean":
        per_seq = (values * mask).sum(-1) / mask.sum(-1).clamp(min=1)
        return per_seq.sum() / max(counts.rows, 1.0)
    if mode == "token-mean":
        return (values * mask).sum() / max(counts.tokens, 1.0)
    if mode == "seq-mean-token-sum-norm":
        if not normalizer:
            raise ValueError("seq-mean-token-sum-norm needs a constant normalizer (max completion tokens)")
        return (values * mask).sum() / (max(counts.rows, 1.0) * normalizer)
    raise ValueError(f"unknown aggregation {mode!r}; valid: seq-mean-token-mean, token-mean, seq-mean-token-sum-norm")


def clipped_policy_loss(logprobs, old_logprobs, advantages, mask, ref_logprobs=None, *, eps_low=0.2, eps_high=0.2,
                        beta=0.0, mode="seq-mean-token-mean", normalizer=None,
                        counts: BatchCounts | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The shared surrogate; the registered losses pick ``mode`` and the clip range.

    ``counts``: the whole batch's rows and tokens when these rows are part of it (see BatchCounts).
    """
    ratio = torch.exp(logprobs - old_logprobs)
    adv = advantages.unsqueeze(-1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv
    token_loss = -torch.minimum(unclipped, clipped)
    metrics: dict[str, float] = {}
    m = mask.to(logprobs.dtype)
    with torch.no_grad():
        ntok = m.sum().clamp(min=1)
        metrics["actor/clip_frac"] = float(((unclipped > clipped).to(m.dtype) * m).sum() / ntok)
        metrics["actor/ratio_mean"] = float((ratio * m).sum() / ntok)
    if beta and ref_logprobs is not None:
        delta = ref_logprobs - logprobs
        kl = torch.exp(delta) - delta - 1.0
        token_loss = token_loss + beta * kl
        metrics["actor/kl"] = float((kl.detach() * m).sum() / m.sum().clamp(min=1))
    loss = aggregate(token_loss, mask, mode, counts, normalizer)
    metrics["actor/pg_loss"] = float(loss.detach())
    return loss, metrics


@LOSSES.register("grpo")
def grpo_loss(logprobs, old_logprobs, advantages, mask, ref_logprobs=None, *, eps, beta, counts=None, **_):
    """GRPO: symmetric clip, sequence-mean of token-means."""
    return clipped_policy_loss(logprobs, old_logprobs, advantages, mask, ref_logprobs, eps_low=eps, eps_high=eps,
                               beta=beta, mode="seq-mean-token-mean", counts=counts)


@LOSSES.register("dr_grpo")
def dr_grpo_loss(logprobs, old_logprobs, advantages, mask, ref_logprobs=None, *, eps, beta, max_completion_tokens,
                 counts=None, **_):
    """Dr. GRPO: token sums over a constant normaliser (pair with advantages without std normalisation)."""
    return clipped_policy_loss(logprobs, old_logprobs, advantages, mask, ref_logprobs, eps_low=eps, eps_high=eps,
                               beta=beta, mode="seq-mean-token-sum-norm", normalizer=max_completion_tokens,
                               counts=counts)


@LOSSES.register("dapo")
def dapo_loss(logprobs, old_logprobs, advantages, mask, ref_logprobs=None, *, eps_low, eps_high, beta, counts=None,
              **_):
    """DAPO: clip-higher (eps_high > eps_low), token-mean over the whole batch."""
    return clipped_policy_loss(logprobs, old_logprobs, advantages, mask, ref_logprobs, eps_low=eps_low,
                               eps_high=eps_high, beta=beta, mode="token-mean", counts=counts)
