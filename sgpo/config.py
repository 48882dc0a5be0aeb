"""Typed configs: one schema per section of ``conf/train.yaml`` and ``conf/profile.yaml``.

Each section is a plain dataclass whose fields have a type and no default: the YAML holds the one
default of every key, and these classes say only what a value may be. ``typed(cfg, key, schema)``
resolves a section, converts it the way OmegaConf does (``optim.lr=1`` and YAML's ``"1e-4"`` are
floats) and refuses a wrong type, an out-of-range value, an unknown or a missing key with a
``ConfigError`` naming the full key, the value given and what is valid::

    optim.lr='fast': must be a float > 0 (e.g. 1e-4)

``load_train_config(cfg)`` checks every section of a composed ``train.yaml`` (first bad key
wins), ``load_profile_config(cfg)`` those of ``profile.yaml``. Groups whose keys vary by option
(task, model, engine, filter, allocation, curriculum, logger, trainer, paths, hydra) are checked
by their own code and are not here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException, ValidationError

T = TypeVar("T")


def _show(value: Any) -> str:
    return "null" if value is None else repr(value)


class ConfigError(ValueError):
    """A config value refused at start: ``<key>=<value>: must be <what is valid>``."""

    def __init__(self, key: str, value: Any, valid: str) -> None:
        self.key, self.value, self.valid = key, value, valid
        super().__init__(f"{key}={_show(value)}: {valid}")

    def under(self, prefix: str, value: Any) -> ConfigError:
        """The same error with its key below ``prefix`` and the value as the user wrote it."""
        return ConfigError(f"{prefix}.{self.key}" if prefix else self.key, value, self.valid)


def rule(valid: str, ok: Callable[[Any], bool] | None = None) -> Any:
    """A schema field with no default: ``valid`` completes "must be ...", ``ok`` is its range check."""
    return field(metadata={"valid": valid, "ok": ok})


def _positive_or_null(v: Any) -> bool:
    return v is None or v >= 1


def _downsample_rules() -> list[str]:
    from sgpo.algos.downsample import DOWNSAMPLERS  # imports torch: only when a train config is checked

    return DOWNSAMPLERS.names()


class Section:
    """Runs every field's range check when the dataclass is built (``OmegaConf.to_object`` does)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            ok = f.metadata.get("ok")
            value = getattr(self, f.name)
            if ok is not None and not ok(value):
                raise ConfigError(f.name, value, f"must be {f.metadata['valid']}")


# ---- train.yaml ---------------------------------------------------------------------------------
@dataclass
class RunSection(Section):
    """The top-level keys of ``train.yaml``."""

    seed: int = rule("an int >= 0", lambda v: v >= 0)
    num_threads: int | None = rule("null or an int >= 1", _positive_or_null)
    ckpt_path: str | None = rule("null or a checkpoint path")
    method_name: str = rule("a label (a string)")
    optimized_metric: str = rule("a metric key (e.g. test/pass@1)")


@dataclass
class TrainSection(Section):
    max_steps: int | None = rule("null or an int >= 1", _positive_or_null)
    max_total_flops: float | None = rule("null or a float > 0 (e.g. 6.0e+12)", lambda v: v is None or v > 0)


@dataclass
class DataSection(Section):
    rollouts_per_step: int = rule("an int >= 2 (a group needs two rollouts)", lambda v: v >= 2)
    phase_epochs: int | None = rule("null or an int >= 1", _positive_or_null)
    phase_steps: int | None = rule("null or an int >= 1", _positive_or_null)
    plateau_window: int | None = rule("null or an int >= 1", _positive_or_null)
    plateau_delta: float = rule("a float (e.g. 0.01)")
    cycles: int | None = rule("null or an int >= 1", _positive_or_null)
    refresh_p_hat: bool = rule("true or false")
    refresh_prior_weight: float = rule("a float >= 0", lambda v: v >= 0)
    refresh_decay: float = rule("a float in [0, 1]", lambda v: 0 <= v <= 1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.phase_epochs is None and self.phase_steps is None and self.plateau_window is None:
            raise ConfigError("phase_epochs", None, "set at least one of data.phase_epochs, data.phase_steps, "
                                                    "data.plateau_window (all are null, so a phase would never end)")


@dataclass
class SelectionSection(Section):
    """``conf/selection/adaptive.yaml`` (the adaptive sGPO); the rule's own keys are checked by the rule."""

    screen: int = rule("0 (off) or an int >= 2", lambda v: v == 0 or v >= 2)
    commit_threshold: float = rule("a float in [0, 1]", lambda v: 0 <= v <= 1)
    half_life_steps: float | None = rule("null (no decay) or a float > 0", lambda v: v is None or v > 0)
    max_prior_strength: float = rule("a float > 0", lambda v: v > 0)
    refit_prior: bool = rule("true or false")
    query_lengths: bool = rule("true or false")
    max_rollouts_factor: float = rule("a float >= 1", lambda v: v >= 1)
    pool_factor: float = rule("a float > 0", lambda v: v > 0)
    degenerate_below: float = rule("a float in [0, 1]", lambda v: 0 <= v <= 1)
    revisit_prob: float = rule("a float in [0, 1]", lambda v: 0 <= v <= 1)
    order: str = rule("random or easy_to_hard", lambda v: v in ("random", "easy_to_hard"))
    # last: the field's name shadows the ``rule`` helper in this class body
    rule: dict[str, Any] = rule("a mapping with `name` (e.g. knapsack) and the rule's parameters",
                                lambda v: isinstance(v.get("name"), str))


@dataclass
class RolloutSection(Section):
    temperature: float = rule("a float > 0 (RL samples)", lambda v: v > 0)
    top_p: float = rule("a float in (0, 1]", lambda v: 0 < v <= 1)
    max_new_tokens: int = rule("an int >= 1", lambda v: v >= 1)


@dataclass
class AlgoSection(Section):
    num_iterations: int = rule("an int >= 1", lambda v: v >= 1)
    minibatches: int = rule("an int >= 1", lambda v: v >= 1)
    skip_zero_adv: bool = rule("true or false")
    dynamic_sampling: bool = rule("true or false")
    max_generation_batches: int = rule("an int >= 1", lambda v: v >= 1)
    train_rows: int | None = rule("null (train on every rollout) or an int >= 2 (rollouts trained per group)",
                                  lambda v: v is None or v >= 2)
    train_rows_rule: str = rule("a registered down-sampling rule (sgpo/algos/downsample.py: max_variance, random)",
                                lambda v: v in _downsample_rules())
    min_mixed_groups: int | None = rule("null (update every step) or an int >= 1 (mixed groups an update waits for)",
                                        lambda v: v is None or v >= 1)


@dataclass
class OptimSection(Section):
    lr: float = rule("a float > 0 (e.g. 1e-4)", lambda v: v > 0)
    weight_decay: float = rule("a float >= 0", lambda v: v >= 0)
    betas: list[float] = rule("two floats in [0, 1) (e.g. [0.9, 0.999])",
                              lambda v: len(v) == 2 and all(0 <= b < 1 for b in v))
    grad_clip: float = rule("a float > 0 (the max gradient norm)", lambda v: v > 0)


@dataclass
class AdvantageSection(Section):
    normalize_std: bool = rule("true or false")


@dataclass
class EvalSection(Section):
    splits: list[str] = rule("a non-empty list of split names (e.g. [test, val])", lambda v: len(v) > 0)
    every_n_steps: int = rule("an int >= 0 (0: only before and after)", lambda v: v >= 0)
    k: int = rule("an int >= 0", lambda v: v >= 0)
    temperature: float = rule("a float >= 0", lambda v: v >= 0)
    max_queries: int | None = rule("null or an int >= 1", _positive_or_null)
    at_total_flops: Any = rule("null, a list of FLOPs > 0, or {start, stop, points} with 0 < start < stop, "
                               "points >= 2", lambda v: _schedule_ok(v))


def _schedule_ok(value: Any) -> bool:
    from sgpo.evaluation import flops_schedule

    try:
        flops_schedule(value)
    except (ValueError, TypeError):
        return False
    return True


@dataclass
class CheckpointSection(Section):
    every_n_steps: int = rule("an int >= 0 (0: never)", lambda v: v >= 0)
    keep_all: bool = rule("true or false")


@dataclass
class GrpoLoss(Section):
    name: str = rule("a registered loss name")
    eps: float = rule("a float > 0 (the PPO clip range)", lambda v: v > 0)
    beta: float = rule("a float >= 0", lambda v: v >= 0)


@dataclass
class DrGrpoLoss(Section):
    name: str = rule("a registered loss name")
    eps: float = rule("a float > 0 (the PPO clip range)", lambda v: v > 0)
    beta: float = rule("a float >= 0", lambda v: v >= 0)
    max_completion_tokens: int = rule("an int >= 1", lambda v: v >= 1)


@dataclass
class DapoLoss(Section):
    name: str = rule("a registered loss name")
    eps_low: float = rule("a float >= 0", lambda v: v >= 0)
    eps_high: float = rule("a float >= 0", lambda v: v >= 0)
    beta: float = rule("a float >= 0", lambda v: v >= 0)


# The typed check of the shipped losses; a loss registered elsewhere keeps its keys unchecked here.
LOSS_SCHEMAS: dict[str, type[Section]] = {"grpo": GrpoLoss, "dr_grpo": DrGrpoLoss, "dapo": DapoLoss}


# ---- profile (conf/profile/, used by both primary configs) --------------------------------------
def _device(v: str) -> bool:
    return v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit())


@dataclass
class ProfileSection(Section):
    num_samples: int = rule("an int >= 1", lambda v: v >= 1)
    temperature: float = rule("a float >= 0 (0: greedy)", lambda v: v >= 0)
    top_p: float = rule("a float in (0, 1]", lambda v: 0 < v <= 1)
    max_new_tokens: int = rule("an int >= 1", lambda v: v >= 1)
    split: str = rule("a split name (e.g. train)", lambda v: len(v) > 0)
    chunk_queries: int = rule("an int >= 1", lambda v: v >= 1)
    max_queries: int | None = rule("null or an int >= 1", _positive_or_null)
    save_completions: bool = rule("true or false")
    force: bool = rule("true or false")
    share_across_sweep: bool = rule("true or false")
    device: str = rule("auto, cpu, cuda or cuda:<index>", _device)
    enabled: bool = rule("true or false")


@dataclass
class ProfileRunSection(Section):
    """The top-level keys of ``profile.yaml``."""

    seed: int = rule("an int >= 0", lambda v: v >= 0)
    num_threads: int | None = rule("null or an int >= 1", _positive_or_null)


# ---- loading ------------------------------------------------------------------------------------
def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _field_valid(schema: type, name: str) -> str:
    f = {f.name: f for f in dataclasses.fields(schema)}.get(name)
    return f"must be {f.metadata['valid']}" if f is not None else "must be set"


def _resolved(cfg: DictConfig, key: str, top_level: list[str]) -> dict[str, Any]:
    """``cfg[key]`` with interpolations resolved; for ``key=""`` the ``top_level`` keys of ``cfg``."""
    if key:
        node = OmegaConf.select(cfg, key, throw_on_missing=False)
        if not isinstance(node, DictConfig):
            raise ConfigError(key, node, "must be a mapping (a config section)")
        names = list(node.keys())
    else:
        node, names = cfg, top_level
    values: dict[str, Any] = {}
    for name in names:
        if name not in node:
            continue  # reported as missing by the schema
        try:
            value = node[name]
            values[name] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        except MissingMandatoryValue:
            values[name] = "???"
        except OmegaConfBaseException as err:
            raw = OmegaConf.to_container(node, resolve=False)[name]
            raise ConfigError(_join(key, str(name)), raw, f"cannot be resolved: {err}".splitlines()[0]) from None
    return values


def typed(cfg: DictConfig, key: str, schema: type[T]) -> T:
    """``cfg[key]`` resolved and checked against ``schema``; ``key=""`` takes the schema's top-level keys.

    Raises ConfigError naming the full key on a wrong type, an out-of-range value, a missing key, or
    an unknown key (listing the valid ones).
    """
    values = _resolved(cfg, key, [f.name for f in dataclasses.fields(schema)])
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    except ConfigError as err:
        raise err.under(key, values.get(err.key, err.value)) from None
    except ConfigKeyError as err:
        name = str(err.key)
        valid = ", ".join(f.name for f in dataclasses.fields(schema))
        raise ConfigError(_join(key, name), values.get(name), f"unknown key; valid keys: {valid}") from None
    except MissingMandatoryValue as err:
        name = str(err.full_key or err.key)
        raise ConfigError(_join(key, name), values.get(name, "???"), f"{_field_valid(schema, name)}; it is missing") \
            from None
    except ValidationError as err:
        # full_key is "lr" or "betas[1]": name the field and show its whole value as written.
        name = str(err.full_key).split("[")[0].split(".")[0]
        raise ConfigError(_join(key, name), values.get(name), _field_valid(schema, name)) from None


LossConfig = GrpoLoss | DrGrpoLoss | DapoLoss | DictConfig


def load_loss(cfg: DictConfig) -> LossConfig:
    """The ``loss`` section by its schema in LOSS_SCHEMAS; a loss registered elsewhere comes back as a
    resolved DictConfig (attribute access like the schemas; only ``loss.name`` is required), its keys
    left to that loss."""
    node = cfg.get("loss")
    name = node.get("name") if isinstance(node, DictConfig) else None
    if not isinstance(name, str) or not name:
        raise ConfigError("loss.name", name, "must name a registered loss (e.g. grpo, dr_grpo, dapo)")
    if name in LOSS_SCHEMAS:
        return typed(cfg, "loss", LOSS_SCHEMAS[name])
    return OmegaConf.create(_resolved(cfg, "loss", []))


@dataclass
class TrainConfig:
    """Every section of ``train.yaml`` that the typed check covers (see the module docstring)."""

    run: RunSection
    train: TrainSection
    data: DataSection
    rollout: RolloutSection
    algo: AlgoSection
    optim: OptimSection
    advantage: AdvantageSection
    eval: EvalSection
    checkpoint: CheckpointSection
    loss: LossConfig
    profile: ProfileSection
    selection: SelectionSection | None  # null: the paper's filter / allocation / curriculum pipeline


@dataclass
class ProfileConfig:
    """The sections of ``profile.yaml`` that the typed check covers."""

    run: ProfileRunSection
    profile: ProfileSection


def load_train_config(cfg: DictConfig) -> TrainConfig:
    """Check every section of a composed ``train.yaml``; the first bad key raises ConfigError."""
    return TrainConfig(
        run=typed(cfg, "", RunSection), train=typed(cfg, "train", TrainSection), data=typed(cfg, "data", DataSection),
        rollout=typed(cfg, "rollout", RolloutSection), algo=typed(cfg, "algo", AlgoSection),
        optim=typed(cfg, "optim", OptimSection), advantage=typed(cfg, "advantage", AdvantageSection),
        eval=typed(cfg, "eval", EvalSection), checkpoint=typed(cfg, "checkpoint", CheckpointSection),
        loss=load_loss(cfg), profile=typed(cfg, "profile", ProfileSection),
        selection=typed(cfg, "selection", SelectionSection) if cfg.get("selection") is not None else None,
    )


def load_profile_config(cfg: DictConfig) -> ProfileConfig:
    """Check the sections of a composed ``profile.yaml``; the first bad key raises ConfigError."""
    return ProfileConfig(run=typed(cfg, "", ProfileRunSection), profile=typed(cfg, "profile", ProfileSection))
