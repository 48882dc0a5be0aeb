"""Rollouts with the policy itself (batched, KV cache), each prompt prefilled once for its n samples.

``prefix_sharing=True`` (the default): the left-padded prompts of a micro-batch run forward once,
the KV cache is repeated n ways and the n samples per prompt decode together, dropping rows from
the batch as they emit EOS. transformers' ``generate(num_return_sequences=n)`` (kept as
``prefix_sharing=False``) copies each prompt n times before the prefill, so every sample pays the
whole prompt again, and keeps computing finished rows.

Sampling is reproducible: each micro-batch runs under its own seed derived from the caller's
seed and the micro-batch index (a private ``torch.Generator``; the old path forks the global RNG),
so the global torch RNG is left untouched. The two paths draw different random streams: a
profile's fingerprint records which one made it (``sgpo.engines.stream_of``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from sgpo.engines.base import Completion, SamplingParams, derive_seed


class HFEngine:
    """Samples from ``model`` on its device; ``max_batch_sequences`` bounds prompts x n per call.

    shares_prompt: whether a prompt's forward pass is computed once for its n samples (the FLOPs
    ledger charges what was computed).
    """

    name = "hf"

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_batch_sequences: int = 512,
                 prefix_sharing: bool = True) -> None:
        if max_batch_sequences < 1:
            raise ValueError(f"engine.max_batch_sequences={max_batch_sequences} must be >= 1")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_sequences = max_batch_sequences
        self.prefix_sharing = bool(prefix_sharing)
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id

    @classmethod
    def for_run(cls, *, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, model_path: str, seed: int,
                max_batch_sequences: int, prefix_sharing: bool) -> HFEngine:
        """The engine of a run (conf/engine/hf.yaml's ``_target_``): samples with the policy itself."""
        return cls(model, tokenizer, max_batch_sequences=max_batch_sequences, prefix_sharing=prefix_sharing)

    @property
    def shares_prompt(self) -> bool:
        return self.prefix_sharing


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
            sample = self._decode_shared if self.prefix_sharing else self._generate_chunk
            out.extend(sample(chunk, n, sampling, derive_seed(seed, index)))
        return out

    def _left_padded(self, prompt_ids: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """[P, W] ids and attention mask, prompts right-aligned so generation starts in one column."""
        width = max(len(p) for p in prompt_ids)
        input_ids = torch.full((len(prompt_ids), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for row, ids in enumerate(prompt_ids):
            input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids):] = 1
        return input_ids, attention

    def _decode_shared(self, prompt_ids: Sequence[Sequence[int]], n: int, sampling: SamplingParams,
                       seed: int) -> list[list[Completion]]:
        """Prefill every prompt once, repeat its KV cache n ways, decode the P x n rows together."""
        device = next(self.model.parameters()).device
        input_ids, attention = (t.to(device) for t in self._left_padded(prompt_ids))
        greedy = sampling.temperature == 0
        copies, n = (n, 1) if greedy else (1, n)  # greedy samples are all the same: decode once, repeat
        generator = torch.Generator(device=device).manual_seed(seed)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)  # as generate: padding does not shift positions
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            out = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True,
                             logits_to_keep=1)
            cache, logits = out.past_key_values, out.logits[:, -1, :]
            next_position = positions[:, -1] + 1
            if n > 1:
                cache.batch_repeat_interleave(n)
                logits, attention, next_position = (t.repeat_interleave(n, dim=0)
                                                    for t in (logits, attention, next_position))
            tokens: list[list[int]] = [[] for _ in range(len(prompt_ids) * n)]
            active = torch.arange(len(tokens), device=device)  # rows still decoding
            for step in range(sampling.max_new_tokens):
                chosen = pick_tokens(logits.float(), sampling, generator)
                for row, token in zip(active.tolist(), chosen.tolist()):
                    tokens[row].append(token)
                running = chosen != self.eos_id
                if step == sampling.max_new_tokens - 1 or not bool(running.any()):
                    break
                if not bool(running.all()):  # finished rows leave the batch and its cache
                    keep = torch.nonzero(running).flatten()
                    cache.batch_select_indices(keep)
                    active, chosen, attention, next_position = (t[keep] for t in (active, chosen, attention,
                                                                                  next_position))
                attention = torch.cat([attention, attention.new_ones((len(active), 1))], dim=1)
                out = self.model(input_ids=chosen[:, None], attention_mask=attention,
                                 position_ids=next_position[:, None], past_key_values=cache, use_cache=True)
                cache, logits = out.past_key_values, out.logits[:, -1, :]
                next_position = next_position + 1
        self.model.train(was_training)
        completions = [self._completion(row) for row in tokens]
        return [completions[i * n:(i + 1) * n] * copies for i in range(len(prompt_ids))]

    def _generate_chunk(self, prompt_ids: Sequence[Sequence[int]], n: int, sampling: SamplingParams,
                        seed: int) -> list[list[Completion]]:
        """transformers' generate: every sample's copy of the prompt is prefilled (prefix_sharing=False)."""
        device = next(self.model.parameters()).device
        input_ids, attention = self._left_padded(prompt_ids)
        width = input_ids.shape[1]
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


def pick_tokens(logits: torch.Tensor, sampling: SamplingParams, generator: torch.Generator) -> torch.Tensor:
    """The next token of each row of ``logits`` [R, V]: argmax at temperature 0, else a draw from
    softmax(logits / T) restricted to the top-p nucleus (the smallest set of most likely tokens
    whose mass reaches top_p, as transformers' TopPLogitsWarper keeps). Returns [R] token ids."""
    if sampling.temperature == 0:
        return logits.argmax(-1)
    logits = logits / sampling.temperature
    if sampling.top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        mass_before = probs.cumsum(-1) - probs
        sorted_logits = sorted_logits.masked_fill(mass_before >= sampling.top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)
