"""Rollout engines by name: ``build_engine(cfg, model, tokenizer, model_path)``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sgpo.engines.base import Completion, Engine, SamplingParams
from sgpo.engines.hf import HFEngine
from sgpo.registry import Registry

ENGINES: Registry[Callable[..., Engine]] = Registry("engine")


@ENGINES.register("hf")
def _build_hf(cfg: Mapping[str, Any], model, tokenizer, model_path: str, seed: int) -> Engine:
    return HFEngine(model, tokenizer, max_batch_sequences=cfg.get("max_batch_sequences", 512))


@ENGINES.register("vllm")
def _build_vllm(cfg: Mapping[str, Any], model, tokenizer, model_path: str, seed: int) -> Engine:
    from sgpo.engines.vllm import VLLMEngine  # vLLM is an optional extra: import it only when asked

    kwargs = {k: v for k, v in dict(cfg).items() if k not in ("name", "max_batch_sequences")}
    return VLLMEngine(model_path, seed=seed, **kwargs)


def build_engine(cfg: Mapping[str, Any], model, tokenizer, model_path: str, seed: int = 0) -> Engine:
    return ENGINES.get(cfg["name"])(cfg, model, tokenizer, model_path, seed)


__all__ = ["ENGINES", "Completion", "Engine", "SamplingParams", "build_engine"]
