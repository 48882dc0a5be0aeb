"""sgpo: sorted Group Policy Optimization for RL with verifiable rewards.

Importing the package registers the ``sgpo_root`` OmegaConf resolver, which the configs use to
place ``outputs/`` and the shipped assets relative to the repository, wherever Python runs from.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

ROOT_DIR = Path(__file__).resolve().parent.parent
ASSETS_DIR = Path(__file__).resolve().parent / "assets"

if not OmegaConf.has_resolver("sgpo_root"):
    OmegaConf.register_new_resolver("sgpo_root", lambda: str(ROOT_DIR))

__version__ = "0.1.0"
