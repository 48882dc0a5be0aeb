"""Generation lengths follow the model preset (profile, training rollouts, evaluation) unless a
command line sets them, and experiment presets compose for both train.py and profile.py."""

from __future__ import annotations

import pytest
from conftest import REPO
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import sgpo  # noqa: F401 - registers the ${sgpo_root:} resolver

CONF = REPO / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


def compose_cfg(config_name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))


def lengths(cfg) -> dict[str, int]:
    """Every generation cap a run uses; the evaluator is given rollout.max_new_tokens (sgpo.training)."""
    out = {"profile": cfg.profile.max_new_tokens}
    if "rollout" in cfg:
        out["rollout"] = cfg.rollout.max_new_tokens
    return out


@pytest.mark.parametrize("model", MODELS)
def test_every_model_preset_sets_its_generation_length(model):
    line = next(s for s in (CONF / "model" / f"{model}.yaml").read_text().splitlines()
                if s.startswith("max_new_tokens:"))
    assert "#" in line, f"conf/model/{model}.yaml: max_new_tokens has no comment"
    for config_name in ("train", "profile"):
        cfg = compose_cfg(config_name, f"model={model}")
        want = cfg.model.max_new_tokens
        assert isinstance(want, int) and want >= 1
        assert set(lengths(cfg).values()) == {want}, (config_name, lengths(cfg))


def test_the_tiny_default_keeps_8_tokens():
    # profile.max_new_tokens is fingerprinted: the default profile cache stays valid only at 8.
    assert lengths(compose_cfg("train")) == {"profile": 8, "rollout": 8}
    assert lengths(compose_cfg("profile")) == {"profile": 8}


def test_command_line_lengths_win_over_the_preset():
    cfg = compose_cfg("train", "model=smollm2_135m", "profile.max_new_tokens=48")
    assert lengths(cfg) == {"profile": 48, "rollout": 48}
    cfg = compose_cfg("train", "model=smollm2_135m", "rollout.max_new_tokens=64")
    assert lengths(cfg) == {"profile": cfg.model.max_new_tokens, "rollout": 64}
    assert lengths(compose_cfg("profile", "profile.max_new_tokens=48")) == {"profile": 48}
    cfg = compose_cfg("train", "model.max_new_tokens=12")
    assert lengths(cfg) == {"profile": 12, "rollout": 12}


@pytest.mark.parametrize("config_name", ["train", "profile"])
def test_smollm2_arith_is_the_readme_demo_in_one_word(config_name):
    cfg = compose_cfg(config_name, "experiment=smollm2_arith")
    assert cfg.model.name == "smollm2_135m" and cfg.task.type == "reasoning_gym"
    assert cfg.task.name == "basic_arithmetic" and cfg.task.answer_extraction == "tag_or_last_number"
    assert cfg.task.instruction == compose_cfg(config_name, "task=reasoning_gym").task.instruction  # the task's own
    assert (cfg.task.num_train, cfg.task.num_val, cfg.task.num_test) == (64, 16, 24)
    assert OmegaConf.to_container(cfg.task.generator_args) == {
        "max_terms": 2, "max_digits": 1, "operators": ["+"], "allow_negation": False, "allow_parentheses": False}
    assert set(lengths(cfg).values()) == {cfg.model.max_new_tokens}


def test_train_only_experiments_compose_for_profile_py():
    # compute_matched also sets train/algo/optim/eval keys: profile.py composes them and reads none.
    cfg = compose_cfg("profile", "experiment=compute_matched")
    for key in ("profile", "task", "model", "engine", "paths"):
        OmegaConf.to_container(cfg[key], resolve=True)
    assert cfg.profile == compose_cfg("profile").profile  # the profile train.py would use
