"""FLOPs of a decoder-only transformer, counted the same way everywhere in sgpo.

Formula (forward pass, one token at position t, i.e. attending to t keys including itself):

    C_fwd(t) = 2 * P + 4 * n_layer * d_attn * t

    P      = n_layer * (d*d_q + 2*d*d_kv + d_q*d + m*d*d_ff) + V*d   (matmul weights: attention
             projections, MLP with m = 3 for gated (SwiGLU) MLPs or 2 otherwise, and the LM head)
    d_attn = n_heads * head_dim (= d_q); 2 FLOPs per multiply-accumulate; the attention term
             counts QK^T and the weighted sum of V (2 * d_attn * t FLOPs each per layer).

This is Kaplan et al. 2020 ("Scaling Laws for Neural Language Models", Table 1: C_fwd ~ 2N +
2 n_layer n_ctx d_attn) with two departures, as in Chowdhery et al. 2022 (PaLM, Appendix B):
the LM-head matmul is counted (it dominates for small models with large vocabularies such as
Qwen2.5-0.5B) and the attention term counts both QK^T and AV over the causal context actually
attended, t, rather than the full window. Embedding lookups, norms, biases and softmax are
ignored (under 1% at these sizes).

A sequence of T tokens run through the model once (prompt + completion, with a KV cache) costs

    C_seq(T) = sum_{t=1..T} C_fwd(t) = 2 P T + 2 n_layer d_attn T (T + 1).

Training costs ~3x forward per trained token (forward + backward of twice the forward).

Sampling n completions of one prompt of p tokens costs what the engine computes. An engine that
prefills the prompt once for its n samples (``shares_prompt``: the hf engine's prefix sharing)
pays the prompt's forward once, then each completion token at its position (its attention
still reads the whole prompt):

    C_group = C_seq(p) + sum_j [C_seq(p + c_j) - C_seq(p)]

An engine that prefills every sample's copy of the prompt pays sum_j C_seq(p + c_j). Profiling,
training rollouts and evaluation are charged this way; training stays per trained sequence
(each sequence's prompt runs forward and backward).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TRAIN_MULTIPLIER = 3.0
# Families whose MLP is gated (gate, up and down projections: 3 d d_ff weights, not 2).
GATED_MLP_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text",
                                   "phi3", "olmo", "olmo2", "granite", "smollm3"})


@dataclass(frozen=True)
class ModelShape:
    """The numbers the FLOPs formula needs, read off a transformers config."""

    n_layer: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    vocab_size: int
    gated_mlp: bool = True

    @classmethod
    def from_config(cls, config) -> ModelShape:
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(
            n_layer=config.num_hidden_layers,
            d_model=config.hidden_size,
            n_heads=heads,
            n_kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            head_dim=head_dim,
            d_ff=config.intermediate_size,
            vocab_size=config.vocab_size,
            gated_mlp=config.model_type in GATED_MLP_MODEL_TYPES,
        )

    @property
    def d_attn(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def matmul_params(self) -> int:
        """P: weights that do a multiply-accumulate per token (non-embedding + LM head)."""
        d, dq, dkv = self.d_model, self.d_attn, self.n_kv_heads * self.head_dim
        attention = d * dq + 2 * d * dkv + dq * d
        mlp = (3 if self.gated_mlp else 2) * d * self.d_ff
        return self.n_layer * (attention + mlp) + self.vocab_size * d


def forward_flops_per_token(shape: ModelShape, position: int) -> float:
    """C_fwd(t) for the token at 1-based ``position`` t."""
    return 2.0 * shape.matmul_params + 4.0 * shape.n_layer * shape.d_attn * position


def sequence_forward_flops(shape: ModelShape, num_tokens):
    """C_seq(T) for T tokens (an int or an integer array of lengths; returns float or float64 array)."""
    t = np.asarray(num_tokens, dtype=np.float64)
    flops = 2.0 * shape.matmul_params * t + 2.0 * shape.n_layer * shape.d_attn * t * (t + 1.0)
    return float(flops) if flops.ndim == 0 else flops


def rollouts_forward_flops(shape: ModelShape, prompt_tokens: int, completion_tokens, *, shared_prompt: bool) -> float:
    """Forward FLOPs of sampling one prompt's completions (``completion_tokens``: each one's length).

    shared_prompt: C_seq(p) + sum_j [C_seq(p + c_j) - C_seq(p)] (the prompt prefilled once);
    otherwise sum_j C_seq(p + c_j) (every sample prefills its own copy). No completions: 0.
    """
    full = sum(sequence_forward_flops(shape, prompt_tokens + n) for n in completion_tokens)
    if not shared_prompt or not len(completion_tokens):
        return float(full)
    prompt = sequence_forward_flops(shape, prompt_tokens)
    return float(full - (len(completion_tokens) - 1) * prompt)


def sequence_train_flops(shape: ModelShape, num_tokens):
    """Forward + backward over T tokens: TRAIN_MULTIPLIER x C_seq(T)."""
    return TRAIN_MULTIPLIER * sequence_forward_flops(shape, num_tokens)


class FlopsLedger:
    """Running totals of the compute a run has spent, in FLOPs; ``charge`` is the one way in.

    profile: the profiling pass, charged for the k samples actually used.
    rollout: forward passes over prompt + completion for every rollout generated.
    train:   ~3x forward per trained token, plus the old-log-prob and reference forward passes.
    wasted:  the part of rollout + train that taught nothing: groups whose advantage was zero
             (rollouts and, when trained on, their training) and rollouts generated but never
             trained on (DAPO refills beyond the step's group count).
    eval:    held-out evaluation; reported, but not part of ``total`` (it trains nothing).

    Several processes: rollout, train and wasted are work split across ranks, so each rank's
    charges wait in ``pending`` and ``settle()`` (one all-reduce through ``reduce``, called by
    every rank at the end of a step) adds the job-wide sums to every rank's totals. profile and
    eval are the same work repeated on every rank (one profile, every rank evaluates the whole
    split): they count once and apply at once.
    """

    KINDS = ("profile", "rollout", "train", "wasted", "eval")
    SHARDED = ("rollout", "train", "wasted")

    def __init__(self, profile: float = 0.0, reduce: Callable[[list[float]], list[float]] | None = None) -> None:
        self.totals = dict.fromkeys(self.KINDS, 0.0)
        self.pending = dict.fromkeys(self.SHARDED, 0.0)
        self.reduce = reduce  # sums a list of floats over ranks; None: one process
        self.charge("profile", profile)

    def charge(self, kind: str, flops: float) -> None:
        """Add ``flops`` of ``kind``; sharded kinds count once ``settle`` has summed them over ranks."""
        if kind not in self.KINDS:
            raise KeyError(f"unknown FLOPs kind {kind!r}; valid: {', '.join(self.KINDS)}")
        flops = float(flops)
        if not (flops >= 0.0 and math.isfinite(flops)):
            raise ValueError(f"{kind} FLOPs must be finite and >= 0, got {flops}")
        if kind in self.pending:
            self.pending[kind] += flops
        else:
            self.totals[kind] += flops

    def settle(self) -> None:
        """Add the pending charges of every rank to the totals (a collective call with several processes)."""
        values = [self.pending[k] for k in self.SHARDED]
        if self.reduce is not None:
            values = self.reduce(values)
        for kind, value in zip(self.SHARDED, values):
            self.totals[kind] += float(value)
        self.pending = dict.fromkeys(self.SHARDED, 0.0)

    def __getattr__(self, kind: str) -> float:
        """``ledger.rollout`` etc.: the settled total of that kind."""
        totals = self.__dict__.get("totals", {})
        if kind in totals:
            return totals[kind]
        raise AttributeError(kind)

    @property
    def total(self) -> float:
        return self.totals["profile"] + self.totals["rollout"] + self.totals["train"]

    def metrics(self) -> dict[str, float]:
        out = {f"compute/{k}_flops": v for k, v in self.totals.items()}
        out["compute/total_flops"] = self.total
        return out

    def state_dict(self) -> dict[str, float]:
        if any(self.pending.values()):
            raise RuntimeError("FlopsLedger.state_dict with unsettled charges: call settle() first")
        return dict(self.totals)

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.totals = {k: float(state[k]) for k in self.KINDS}
        self.pending = dict.fromkeys(self.SHARDED, 0.0)
