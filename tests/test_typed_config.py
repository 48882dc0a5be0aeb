"""Typed configs (sgpo.config): a wrong type, an out-of-range value or an unknown key is refused at
start naming the full key, the value and what is valid; every shipped preset loads; the YAML holds
the only default of every key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import REPO, run_cli
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sgpo import config
from sgpo.config import ConfigError, load_profile_config, load_train_config

CONF = REPO / "conf"


def compose_cfg(config_name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


# (overrides, the start of the message: full key, value as given, what is valid)
REFUSED = [
    (["optim.lr=fast"], "optim.lr='fast': must be a float > 0"),
    (["optim.lr=-1"], "optim.lr=-1: must be a float > 0"),
    (["optim.betas=[0.9,x]"], "optim.betas=[0.9, 'x']: must be two floats in [0, 1)"),
    (["optim.betas=[0.9]"], "optim.betas=[0.9]: must be two floats in [0, 1)"),
    (["algo.minibatches=0"], "algo.minibatches=0: must be an int >= 1"),
    (["algo.minibatches=two"], "algo.minibatches='two': must be an int >= 1"),
    (["algo.max_generation_batches=1.5"], "algo.max_generation_batches=1.5: must be an int >= 1"),
    (["data.rollouts_per_step=1"], "data.rollouts_per_step=1: must be an int >= 2"),
    (["data.cycles=0"], "data.cycles=0: must be null or an int >= 1"),
    (["data.refresh_decay=1.5"], "data.refresh_decay=1.5: must be a float in [0, 1]"),
    (["data.phase_epochs=null"], "data.phase_epochs=null: set at least one of data.phase_epochs, data.phase_steps"),
    (["rollout.top_p=1.5"], "rollout.top_p=1.5: must be a float in (0, 1]"),
    (["eval.splits=[]"], "eval.splits=[]: must be a non-empty list"),
    (["eval.k=-1"], "eval.k=-1: must be an int >= 0"),
    (["checkpoint.keep_all=sometimes"], "checkpoint.keep_all='sometimes': must be true or false"),
    (["loss=dapo", "loss.eps_high=x"], "loss.eps_high='x': must be a float >= 0"),
    (["loss=dr_grpo", "loss.max_completion_tokens=0"], "loss.max_completion_tokens=0: must be an int >= 1"),
    (["loss.eps=0"], "loss.eps=0: must be a float > 0"),
    (["advantage.normalize_std=maybe"], "advantage.normalize_std='maybe': must be true or false"),
    (["train.max_total_flops=-5"], "train.max_total_flops=-5: must be null or a float > 0"),
    (["train.max_steps=0"], "train.max_steps=0: must be null or an int >= 1"),
    (["profile.num_samples=0"], "profile.num_samples=0: must be an int >= 1"),
    (["profile.device=gpu"], "profile.device='gpu': must be auto, cpu, cuda"),
    (["num_threads=0"], "num_threads=0: must be null or an int >= 1"),
    (["seed=x"], "seed='x': must be an int >= 0"),
    (["selection.screen=1"], "selection.screen=1: must be 0 (off) or an int >= 2"),
    (["selection.order=hardest"], "selection.order='hardest': must be random or easy_to_hard"),
    (["selection.half_life_steps=0"], "selection.half_life_steps=0: must be null (no decay) or a float > 0"),
    (["selection.revisit_prob=2"], "selection.revisit_prob=2: must be a float in [0, 1]"),
    # interpolations resolve before the check: rollout.temperature follows profile.temperature
    (["profile.temperature=0"], "rollout.temperature=0: must be a float > 0"),
    # a key the schema does not know (a typo in a YAML file) lists the valid ones
    (["+optim.momentum=0.9"], "optim.momentum=0.9: unknown key; valid keys: lr, weight_decay, betas, grad_clip"),
    (["+loss.eps_high=0.3"], "loss.eps_high=0.3: unknown key; valid keys: name, eps, beta"),
    (["optim.lr=???"], "optim.lr='???': must be a float > 0 (e.g. 1e-4); it is missing"),
    (["rollout.top_p=${nowhere}"], "rollout.top_p='${nowhere}': cannot be resolved"),
]


@pytest.mark.parametrize("overrides, message", REFUSED, ids=[" ".join(o) for o, _ in REFUSED])
def test_bad_value_is_refused_naming_the_full_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_train_config(compose_cfg("train", *overrides))
    assert str(err.value).startswith(message), str(err.value)


def test_profile_config_refuses_naming_the_full_key():
    with pytest.raises(ConfigError, match=r"^profile\.num_samples='zero': must be an int >= 1"):
        load_profile_config(compose_cfg("profile", "profile.num_samples=zero"))
    with pytest.raises(ConfigError, match=r"^profile\.chunk_queries=0: must be an int >= 1"):
        load_profile_config(compose_cfg("profile", "profile.chunk_queries=0"))


def test_values_convert_as_omegaconf_does():
    cfg = load_train_config(compose_cfg("train", "optim.lr=1", "optim.betas=[0,0.5]", "algo.minibatches='2'"))
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.betas == [0.0, 0.5] and cfg.algo.minibatches == 2
    assert load_train_config(compose_cfg("train", "optim.lr='1e-4'")).optim.lr == pytest.approx(1e-4)


def test_default_config_loads_with_the_yaml_values():
    cfg = load_train_config(compose_cfg("train"))
    assert cfg.optim == config.OptimSection(lr=1e-4, weight_decay=0.0, betas=[0.9, 0.999], grad_clip=1.0)
    assert cfg.algo.max_generation_batches == 16 and cfg.data.cycles is None
    assert cfg.advantage.normalize_std is True
    assert cfg.loss == config.GrpoLoss(name="grpo", eps=0.2, beta=0.0)
    assert cfg.run.method_name == "sgpo" and cfg.profile.num_samples == 8


@pytest.mark.parametrize("overrides", [
    *[[f"method={m}"] for m in options("method")],
    *[[f"loss={m}"] for m in options("loss")],
    *[[f"model={m}"] for m in options("model")],  # profile/rollout lengths follow model.max_new_tokens
    *[[f"debug={m}"] for m in options("debug")],
    *[[f"experiment={m}", f"method={method}"] for m in options("experiment") for method in options("method")],
    *[[f"hparams_search={m}"] for m in options("hparams_search")],
], ids=lambda o: " ".join(o))
def test_every_shipped_preset_loads(overrides):
    load_train_config(compose_cfg("train", *overrides))


def test_interpolations_resolve_before_the_check():
    cfg = load_train_config(compose_cfg("train", "loss=dr_grpo", "++model.max_new_tokens=12",
                                        "profile.max_new_tokens=${model.max_new_tokens}"))
    assert cfg.profile.max_new_tokens == cfg.rollout.max_new_tokens == cfg.loss.max_completion_tokens == 12


def test_profile_config_loads():
    cfg = load_profile_config(compose_cfg("profile"))
    assert cfg.run.seed == 0 and cfg.profile.num_samples == 8


def test_dr_grpo_turns_std_normalisation_off_and_the_command_line_wins():
    assert load_train_config(compose_cfg("train", "loss=dr_grpo")).advantage.normalize_std is False
    cfg = load_train_config(compose_cfg("train", "loss=dr_grpo", "advantage.normalize_std=true"))
    assert cfg.advantage.normalize_std is True and cfg.loss.name == "dr_grpo"
    assert load_train_config(compose_cfg("train", "method=dapo")).loss == config.DapoLoss(
        name="dapo", eps_low=0.2, eps_high=0.28, beta=0.0)


def test_a_loss_registered_elsewhere_passes_through_untouched():
    """A loss not in LOSS_SCHEMAS is the loss registry's to check: its keys come back unchecked."""
    cfg = load_train_config(compose_cfg("train", "loss.name=nan_for_test", "+loss.anything=x"))
    assert OmegaConf.to_container(cfg.loss) == {"name": "nan_for_test", "eps": 0.2, "beta": 0.0, "anything": "x"}
    assert cfg.loss.beta == 0.0
    with pytest.raises(ConfigError, match=r"^loss\.name=null: must name a registered loss"):
        load_train_config(compose_cfg("train", "loss.name=null"))


SCHEMAS = [config.RunSection, config.TrainSection, config.DataSection, config.RolloutSection, config.AlgoSection,
           config.OptimSection, config.AdvantageSection, config.EvalSection, config.CheckpointSection,
           config.ProfileSection, config.ProfileRunSection, config.SelectionSection, *config.LOSS_SCHEMAS.values()]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.__name__)
def test_the_yaml_holds_the_only_default(schema):
    """Schemas say what a value may be; a default in code would be a second default."""
    with_default = [f.name for f in dataclasses.fields(schema)
                    if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
    assert not with_default, f"{schema.__name__} has defaults in code for {with_default}: put them in conf/"


def test_train_config_covers_every_checked_section():
    sections = {f.name for f in dataclasses.fields(config.TrainConfig)}
    assert sections == {"run", "train", "data", "rollout", "algo", "optim", "advantage", "eval", "checkpoint", "loss",
                        "profile", "selection"}
    yaml_sections = set(compose_cfg("train").keys())
    assert sections - {"run"} <= yaml_sections


@pytest.mark.parametrize("script, override, key", [
    ("train.py", "optim.lr=fast", "optim.lr='fast'"),
    ("profile.py", "profile.num_samples=zero", "profile.num_samples='zero'"),
])
def test_cli_refuses_before_any_work_without_a_traceback(tmp_path: Path, script, override, key):
    method = ["method=sgpo_profile_prior"] if script == "train.py" else []  # a method that would profile first
    proc = run_cli(script, override, *method, f"paths.output_dir={tmp_path}", check=False, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"error: {key}: must be" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "profiles").exists(), "refused before any work: nothing profiled"


def test_profiling_run_checks_the_whole_config_first(monkeypatch):
    """sgpo.profiling.run refuses a bad top-level key too, before the profiling pass is imported or run."""
    import sgpo.profiling
    import sgpo.profiling.runner

    monkeypatch.setattr(sgpo.profiling.runner, "run", lambda cfg: pytest.fail("profiled with a bad config"))
    with pytest.raises(ConfigError, match=r"^seed=-1: must be an int >= 0"):
        sgpo.profiling.run(compose_cfg("profile", "seed=-1"))
