"""``run(cfg)``: the whole sGPO pipeline behind ``python train.py``.

profile (cached) -> ProfiledDataModule (filter, allocate, curriculum) -> SGPOModule trained by a
Lightning Trainer -> held-out evaluation -> the trained policy (``save_pretrained``) and
``metrics.json`` in the run folder. Returns the metrics so a Hydra sweeper can optimise one.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from sgpo.callbacks import Evaluator, StepCheckpoint, StopRules, verify_checkpoint
from sgpo.data.datamodule import ProfiledDataModule
from sgpo.engines import build_engine
from sgpo.engines.base import SamplingParams
from sgpo.io import atomic_write_json
from sgpo.models import load_policy, prepare_model, weights_fingerprint
from sgpo.module import SGPOModule
from sgpo.profiling.runner import get_profile
from sgpo.profiling.store import DifficultyProfile
from sgpo.profiling.sweep import multirun_dir
from sgpo.prompts import encode_queries, prompt_encoder
from sgpo.tasks import build_task

log = logging.getLogger(__name__)


def run_dir_of(cfg: DictConfig) -> Path:
    """The Hydra run folder, or ``paths.run_dir`` when set (tests, plain Python)."""
    if cfg.paths.get("run_dir"):
        return Path(cfg.paths.run_dir)
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def validate(cfg: DictConfig) -> None:
    """Refuse out-of-range values at start, naming the key."""
    checks = [
        ("data.rollouts_per_step", cfg.data.rollouts_per_step, lambda v: v >= 2, ">= 2"),
        ("optim.lr", cfg.optim.lr, lambda v: v > 0, "> 0"),
        ("algo.num_iterations", cfg.algo.num_iterations, lambda v: v >= 1, ">= 1"),
        ("algo.minibatches", cfg.algo.minibatches, lambda v: v >= 1, ">= 1"),
        ("train.max_steps", cfg.train.max_steps, lambda v: v is None or v >= 1, ">= 1 or null"),
        ("eval.every_n_steps", cfg.eval.every_n_steps, lambda v: v >= 0, ">= 0"),
        ("rollout.temperature", cfg.rollout.temperature, lambda v: v > 0, "> 0 for RL sampling"),
    ]
    for key, value, ok, want in checks:
        if not ok(value):
            raise ValueError(f"{key}={value} must be {want}")
    validate_data_policy(cfg)


def validate_data_policy(cfg: DictConfig) -> None:
    """Registry names and data-policy ranges, checked before any profiling or loading work.

    Unknown names raise the registry's KeyError, which lists the valid ones; out-of-range
    values name their key.
    """
    from sgpo.algos.losses import LOSSES
    from sgpo.data import ALLOCATIONS, CURRICULA, FILTERS
    from sgpo.engines import ENGINES
    from sgpo.profiling.runner import validate_profile_cfg
    from sgpo.tasks import TASKS

    for registry, key in ((FILTERS, "filter.name"), (ALLOCATIONS, "allocation.name"), (CURRICULA, "curriculum.name"),
                          (LOSSES, "loss.name"), (ENGINES, "engine.name"), (TASKS, "task.type")):
        name = OmegaConf.select(cfg, key)
        if name not in registry:
            raise KeyError(f"{key}={name!r} is not registered; valid: {', '.join(registry.names())}")
    validate_profile_cfg(cfg)
    # Run the configured filter and group-size rule on every p-hat a k-sample profile can give:
    # their own checks refuse out-of-range values (naming the key), and the largest group follows.
    k = int(cfg.profile.num_samples)
    every_p_hat = np.arange(k + 1) / k
    rule_params = lambda key: {n: v for n, v in OmegaConf.to_container(cfg[key], resolve=True).items()  # noqa: E731
                               if n != "name"}
    FILTERS.get(cfg.filter.name)(every_p_hat, int(cfg.seed), **rule_params("filter"))
    largest = int(ALLOCATIONS.get(cfg.allocation.name)(every_p_hat, k, **rule_params("allocation")).max())
    if int(cfg.data.rollouts_per_step) < largest:
        raise ValueError(f"data.rollouts_per_step={cfg.data.rollouts_per_step} is smaller than the largest group this "
                         f"allocation can give ({largest}); raise it to at least {largest}")


def build_loggers(cfg: DictConfig, run_dir: Path) -> list:
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger, WandbLogger

    kind = cfg.logger.name
    if kind == "csv":
        return [CSVLogger(save_dir=str(run_dir), name="csv", version="")]
    if kind == "tensorboard":
        return [CSVLogger(save_dir=str(run_dir), name="csv", version=""),
                TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="")]
    if kind == "wandb":
        offline = cfg.logger.offline if cfg.logger.offline is not None else not _wandb_logged_in()
        group, tags = wandb_group_and_tags(cfg)
        wandb_logger = WandbLogger(project=cfg.logger.project, group=group, tags=tags,
                                   save_dir=str(run_dir), offline=offline,
                                   config=OmegaConf.to_container(cfg, resolve=True))
        wandb_logger.experiment.define_metric("compute/total_flops")
        for prefix in ("train", "test", "val", "actor", "curriculum"):
            wandb_logger.experiment.define_metric(f"{prefix}/*", step_metric="compute/total_flops")
        return [CSVLogger(save_dir=str(run_dir), name="csv", version=""), wandb_logger]
    raise ValueError(f"logger.name={kind!r}; valid: csv, tensorboard, wandb")


def wandb_group_and_tags(cfg: DictConfig) -> tuple[str | None, list[str]]:
    """wandb group (``logger.group``, else the multirun's folder: one group per sweep) and tags.

    Tags name what a sweep varies, so runs can be filtered on the dashboard: method, k, allocation.
    """
    group = cfg.logger.group
    sweep = multirun_dir()
    if group is None and sweep is not None:
        root = Path(cfg.paths.output_dir).resolve()
        sweep = sweep.resolve()
        group = str(sweep.relative_to(root)) if sweep.is_relative_to(root) else sweep.name
    k = cfg.profile.num_samples if cfg.profile.enabled else "none"
    tags = [f"method:{cfg.method_name}", f"k:{k}", f"allocation:{cfg.allocation.name}", *list(cfg.logger.tags or [])]
    return (group[-128:] if group else None), [t[:64] for t in tags]


def log_data_to_wandb(loggers: list, profile: DifficultyProfile, summary: dict[str, Any]) -> None:
    """At the start: the p-hat histogram and the group-size mix, as a wandb histogram and table."""
    for logger in loggers:
        run = getattr(logger, "experiment", None)
        if not hasattr(run, "summary"):
            continue
        import wandb

        payload: dict[str, Any] = {}
        if profile.outcomes.size:
            payload["data/p_hat"] = wandb.Histogram(profile.success_rates().tolist(), num_bins=profile.num_samples + 1)
        mix = summary.get("data/group_size_mix", {})
        table = wandb.Table(columns=["group_size", "queries", "rollouts_per_epoch"],
                            data=[[int(g), int(n), int(g) * int(n)] for g, n in sorted(mix.items())])
        payload["data/group_size_mix"] = table
        run.log(payload, commit=True)


def _wandb_logged_in() -> bool:
    if os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        return False
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path.home() / ".netrc"
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


# The data policy that needs no p-hat: the only one allowed with profile.enabled=false.
PROFILE_FREE = {"filter": "none", "allocation": "uniform", "curriculum": "random"}


def unprofiled(cfg: DictConfig, task) -> tuple[DifficultyProfile, None]:
    """No profiling pass (plain GRPO/DAPO): every train query, no outcomes, no profile FLOPs charged."""
    wrong = {g: cfg[g].name for g, name in PROFILE_FREE.items() if cfg[g].name != name}
    if wrong:
        raise ValueError(f"profile.enabled=false, but {', '.join(f'{g}={n}' for g, n in wrong.items())} needs p-hat; "
                         f"use {', '.join(f'{g}={n}' for g, n in PROFILE_FREE.items())} or profile.enabled=true")
    queries = task.split(cfg.profile.split)
    queries = queries[: cfg.profile.max_queries] if cfg.profile.max_queries else queries
    return DifficultyProfile.unprofiled([q.id for q in queries]), None


def run(cfg: DictConfig) -> dict[str, Any]:
    started = time.time()
    validate(cfg)
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run_dir = run_dir_of(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)

    if cfg.ckpt_path:
        verify_checkpoint(cfg.ckpt_path)  # before any work: a damaged checkpoint is refused at start
    prepare_model(cfg.model)  # GGUF-shipped models: dequantise into model.path once
    task = build_task(cfg.task)
    profile, profile_dir = get_profile(cfg) if cfg.profile.enabled else unprofiled(cfg, task)
    profile_flops = profile.meta.get("profile_flops", 0.0)
    # resolve=True: values may be interpolations (experiment=compute_matched picks optim.lr per method)
    node = lambda key: OmegaConf.to_container(cfg[key], resolve=True)  # noqa: E731
    datamodule = ProfiledDataModule(profile, task.split(cfg.profile.split), node("filter"), node("allocation"),
                                    node("curriculum"), node("data"), seed=int(cfg.seed))
    data_summary = datamodule.summary()
    log.info("data: %s", json.dumps(data_summary))

    policy, tokenizer = load_policy(cfg.model.path, cfg.model.dtype)
    encode = prompt_encoder(tokenizer, cfg.model)
    reference = None
    if cfg.loss.get("beta"):
        reference, _ = load_policy(cfg.model.path, cfg.model.dtype)
        reference.requires_grad_(False)
    sampling = SamplingParams(float(cfg.rollout.temperature), float(cfg.rollout.top_p), int(cfg.rollout.max_new_tokens))

    def engine_factory(model):
        return build_engine(cfg.engine, model, tokenizer, cfg.model.path, seed=int(cfg.seed))

    module = SGPOModule(policy, tokenizer, task, datamodule.queries, engine_factory, sampling, node("loss"), node("algo"),
                        node("optim"), profile_flops=float(profile_flops), seed=int(cfg.seed), reference=reference,
                        encode=encode)
    module.sampler = datamodule.sampler

    eval_splits = {}
    for split in cfg.eval.splits:
        queries = task.split(split)[: cfg.eval.max_queries] if cfg.eval.max_queries else task.split(split)
        if not queries:
            raise ValueError(f"eval.splits={list(cfg.eval.splits)}: the task's {split!r} split has no queries; "
                             f"remove it from eval.splits or give the task a {split} split")
        eval_splits[split] = (queries, encode_queries(encode, task, queries))
    evaluator = Evaluator(eval_splits, cfg.eval.every_n_steps, cfg.eval.k, cfg.rollout.max_new_tokens,
                          cfg.eval.temperature, seed=int(cfg.seed))
    stop = StopRules(cfg.train.max_steps, cfg.train.max_total_flops)
    callbacks = [evaluator, stop]
    if cfg.checkpoint.every_n_steps:
        callbacks.append(StepCheckpoint(run_dir / "checkpoints", cfg.checkpoint.every_n_steps, cfg.checkpoint.keep_all))
    loggers = build_loggers(cfg, run_dir)
    log_data_to_wandb(loggers, profile, data_summary)
    trainer = pl.Trainer(
        logger=loggers, callbacks=callbacks, max_epochs=1, max_steps=-1,
        enable_checkpointing=False, num_sanity_val_steps=0, log_every_n_steps=1, default_root_dir=str(run_dir),
        **OmegaConf.to_container(cfg.trainer, resolve=True),
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    log.info("training stopped: %s", stop.reason or "end of data")

    done = evaluator.last.get("train/steps") == module.rollout_step  # already evaluated at this step
    final = evaluator.last if done else evaluator.run(trainer, module)
    before = evaluator.history[0] if evaluator.history else {}
    if trainer.is_global_zero:  # several processes: rank 0 writes the run's files
        policy_dir = run_dir / "policy"
        module.policy.save_pretrained(policy_dir)
        tokenizer.save_pretrained(policy_dir)
    split = cfg.eval.splits[0]
    metrics = {
        f"{split}/pass@1_before": before.get(f"{split}/pass@1"),
        f"{split}/mean@k_before": before.get(f"{split}/mean@k"),
        **{k: v for k, v in final.items()},
        **module.ledger.metrics(),
        "train/steps": module.rollout_step,
        "train/skipped_updates": module.counters.get("train/skipped_updates", 0.0),
        "train/stop_reason": stop.reason or "end of data",
        "profile/path": str(profile_dir) if profile_dir else None,
        "profile/num_samples": profile.num_samples,
        "wall_s": time.time() - started,
        **{k: v for k, v in data_summary.items()},
        "eval_history": evaluator.history,
        "world_size": trainer.world_size,
    }
    if trainer.world_size > 1:  # replicas must end identical: say so in every rank's log
        log.info("rank %d of %d: final weights sha256 %s, total FLOPs %.6e", trainer.global_rank, trainer.world_size,
                 weights_fingerprint(module.policy), module.ledger.total)
    if not trainer.is_global_zero:
        return metrics
    atomic_write_json(run_dir / "metrics.json", metrics)
    for logger in trainer.loggers:
        if hasattr(logger.experiment, "summary"):  # wandb: final numbers go to the run summary
            logger.experiment.summary.update({k: v for k, v in metrics.items()
                                              if isinstance(v, (int, float, str)) and v is not None})
            logger.experiment.finish()
    print(f"{split}/pass@1: {metrics[f'{split}/pass@1_before']:.3f} -> {final[f'{split}/pass@1']:.3f}  "
          f"total FLOPs {module.ledger.total:.3e}  steps {module.rollout_step}", flush=True)
    print(f"run: {run_dir}", flush=True)
    return metrics
