"""Rollouts with the policy itself through transformers' ``generate`` (batched, KV cache).

Sampling is reproducible: each micro-batch runs under its own seed derived from the caller's
seed and the micro-batch index, inside a forked RNG so the global torch RNG is left untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from sgpo.engines.base import Completion, SamplingParams, derive_seed


class HFEngine:
    """Samples from ``model`` on its device; ``max_batch_sequences`` bounds prompts x n per call."""

    name = "hf"

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_batch_sequences: int = 512) -> None:
        if max_batch_sequences < 1:
            raise ValueError(f"engine.max_batch_sequences={max_batch_sequences} must be >= 1")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_sequences = max_batch_sequences
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id

    @classmethod
    def for_run(cls, *, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, model_path: str, seed: int,
                max_batch_sequences: int) -> HFEngine:
        """The engine of a run (conf/engine/hf.yaml's ``_target_``): samples with the policy itself."""
        return cls(model, tokenizer, max_batch_sequences=max_batch_sequences)

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Nothing to copy: this engine samples with the trained module itself."""
        self.model = model

    @torch.no_grad()
    def generate(self, prompt_ids: Sequence[Sequence[int]], n: int, sampling: SamplingParams,
                 seed: int) -> list[list[Completion]]:
        if n < 1:
            raise ValueError(f"n={n} samples per prompt must be >= 1")
        per_call = max(1, self.max_batch_sequences // n)
        out: list[list[Completion]] = []
        for index, start in enumerate(range(0, len(prompt_ids), per_call)):
            chunk = prompt_ids[start:start + per_call]
            out.extend(self._generate_chunk(chunk, n, sampling, derive_seed(seed, index)))
        return out

    def _generate_chunk(self, prompt_ids: Sequence[Sequence[int]], n: int, sampling: SamplingParams,
                        seed: int) -> list[list[Completion]]:
        device = next(self.model.parameters()).device
        width = max(len(p) for p in prompt_ids)
        # Left padding so every prompt ends at the same column and generation starts together.
        input_ids = torch.full((len(prompt_ids), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for row, ids in enumerate(prompt_ids):
            input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids):] = 1
        greedy = sampling.temperature == 0
        kwargs = dict(do_sample=False) if greedy else dict(
            do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        # Greedy samples are all the same: decode once and repeat (generate refuses n > 1 without sampling).
        copies, n = (n, 1) if greedy else (1, n)
        was_training = self.model.training
        self.model.eval()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            sequences = self.model.generate(
                input_ids=input_ids.to(device), attention_mask=attention.to(device),
                max_new_tokens=sampling.max_new_tokens, num_return_sequences=n,
                eos_token_id=self.eos_id, pad_token_id=self.pad_id, **kwargs,
            )
        self.model.train(was_training)
        new_tokens = sequences[:, width:].tolist()  # [len(prompt_ids) * n, <= max_new_tokens]
        completions = [self._completion(row) for row in new_tokens]
        return [completions[i * n:(i + 1) * n] * copies for i in range(len(prompt_ids))]

    def _completion(self, row: list[int]) -> Completion:
        if self.eos_id in row:
            ids = row[: row.index(self.eos_id) + 1]
            reason = "stop"
        else:
            ids = row
            reason = "length"
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return Completion(token_ids=tuple(ids), text=text, finish_reason=reason)
