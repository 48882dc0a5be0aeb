"""Hydra compose tests: every config file of every group composes with the primary configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import sgpo  # noqa: F401 - registers the ${sgpo_root:} resolver

CONF = Path(__file__).resolve().parent.parent / "conf"
PRIMARY = {
    "profile": ["task", "model", "engine", "profile", "paths"],
    "train": ["task", "model", "engine", "profile", "filter", "allocation", "curriculum", "selection", "loss", "method",
              "trainer", "logger", "paths", "debug", "experiment", "hparams_search"],
}
REQUIRED = {"task/jsonl": ["task.train_path=/data/train.jsonl"]}


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_cfg(config_name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


@pytest.mark.parametrize("config_name, group, option", [
    (name, group, option) for name, groups in PRIMARY.items() for group in groups for option in group_options(group)
])
def test_every_group_option_composes(config_name, group, option):
    overrides = [f"{group}={option}", *REQUIRED.get(f"{group}/{option}", [])]
    cfg = compose_cfg(config_name, overrides)
    container = OmegaConf.to_container(cfg, resolve=True)
    if group in ("method", "debug", "experiment", "hparams_search"):  # global presets: no node of their own
        return
    assert container[group], f"{group}={option} composed to an empty node"


def test_default_profile_config_values():
    cfg = compose_cfg("profile", [])
    assert cfg.task.name == "arithmetic" and cfg.model.name == "tiny_arith" and cfg.engine.name == "hf"
    assert cfg.profile.num_samples == 8 and cfg.profile.temperature == 1.0
    assert Path(cfg.model.path).is_dir(), "the shipped tiny policy must be where model/tiny_arith.yaml says"
    assert cfg.paths.profiles_dir.endswith("outputs/profiles")


def test_every_config_key_is_commented():
    """Configs hold values and each value's line (or the line above it) says what it means."""
    undocumented = []
    for path in CONF.rglob("*.yaml"):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
                continue
            if stripped.endswith(":"):  # a mapping header, documented by its children
                continue
            if "#" not in line and not (i and lines[i - 1].strip().startswith("#")):
                undocumented.append(f"{path.relative_to(CONF)}:{i + 1}: {stripped}")
    assert not undocumented, "undocumented config keys:\n" + "\n".join(undocumented)


def test_default_train_config_snapshot():
    """The composed default training config; a changed default shows up here in review."""
    cfg = compose_cfg("train", [])
    picked = {k: cfg[k].name for k in ("task", "model", "engine", "filter", "allocation", "curriculum", "loss")}
    assert picked == {"task": "arithmetic", "model": "tiny_arith", "engine": "hf", "filter": "none",
                      "allocation": "uniform", "curriculum": "random", "loss": "grpo"}
    assert list(cfg.logger) == ["csv"]  # logger=csv: one sink
    assert cfg.method_name == "sgpo"  # the adaptive sGPO: the selection group drives the steps
    # ... with its prior learnt online (no profiling pass) and PODS down-sampling to 4 trained rows
    assert cfg.profile.enabled is False and cfg.selection.refit_prior is True
    assert (cfg.algo.train_rows, cfg.algo.train_rows_rule) == (4, "max_variance")
    assert cfg.algo.min_mixed_groups == 16  # ... and updates that wait for 16 mixed groups
    assert cfg.selection.rule.name == "knapsack" and cfg.selection.rule.sizes == [2, 4, 8, 16]
    assert (cfg.selection.screen, cfg.selection.revisit_prob, cfg.selection.half_life_steps) == (2, 0.05, 64)
    paper = compose_cfg("train", ["method=sgpo_paper"])
    assert paper.get("selection") is None and paper.filter.name == "sgpo"
    assert (paper.filter.trivial_threshold, paper.filter.keep_unsolvable) == (0.75, 0.1)
    assert (paper.allocation.g_min, paper.allocation.g_max) == (2, 8)
    assert cfg.profile.num_samples == 8 and cfg.rollout.temperature == 1.0
    assert cfg.advantage.normalize_std is True and "normalize_std" not in cfg.loss


@pytest.mark.parametrize("overrides, normalize_std", [
    (["loss=grpo"], True),
    (["loss=dapo"], True),
    (["loss=dr_grpo"], False),  # Dr. GRPO drops the std division
    (["loss=dr_grpo", "advantage.normalize_std=true"], True),  # the command line wins
    (["method=dapo"], True),  # a preset that picks its loss (override /loss: dapo)
])
def test_loss_options_set_the_advantage_normalisation(overrides, normalize_std):
    """normalize_std is an advantage setting (advantage.normalize_std); a loss option may set it."""
    cfg = compose_cfg("train", overrides)
    assert cfg.advantage.normalize_std is normalize_std
    assert "normalize_std" not in cfg.loss
