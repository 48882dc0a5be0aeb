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


__all__ = ["Completion", "Engine", "HFEngine", "SamplingParams", "build_engine"]
