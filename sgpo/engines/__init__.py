"""Rollout engines, built from the ``engine`` config's ``_target_``: ``build_engine(cfg, model, tokenizer, ...)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sgpo.engines.base import Completion, Engine, SamplingParams
from sgpo.engines.hf import HFEngine


def build_engine(cfg: Mapping[str, Any], model, tokenizer, model_path: str, seed: int) -> Engine:
    """Instantiate ``cfg._target_`` (an engine's ``for_run``) with the run's policy, tokenizer, model path
    and seed; ``cfg.name`` is a label (profile fingerprints, logs), not an argument."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    node = OmegaConf.create({k: v for k, v in dict(cfg).items() if k != "name"})
    return instantiate(node, model=model, tokenizer=tokenizer, model_path=model_path, seed=seed, _convert_="all")


def prefill_shared(cfg: Mapping[str, Any]) -> bool:
    """Whether the engine ``cfg`` builds computes a prompt's forward once for its n samples."""
    return bool(dict(cfg).get("prefix_sharing", False))  # only the hf engine has the option


def stream_of(cfg: Mapping[str, Any]) -> str:
    """The random stream the engine ``cfg`` builds draws (part of a profile's fingerprint): the hf
    engine's two sampling paths draw differently; vLLM's prefix caching changes no draw."""
    return f"{cfg['name']}/shared-prefill" if prefill_shared(cfg) else str(cfg["name"])


__all__ = ["Completion", "Engine", "HFEngine", "SamplingParams", "build_engine", "prefill_shared", "stream_of"]
