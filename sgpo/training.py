"""``train(cfg)``: the whole sGPO pipeline behind ``python train.py``.

In the order of the lightning-hydra-template: typed config check, seed, profile (cached; none with
profile.enabled=false),
datamodule (filter, allocate, curriculum), policy and module, callbacks, loggers (each built
from its ``_target_``), trainer; fit; final evaluation; the trained policy
(``save_pretrained``) and ``metrics.json`` in the run folder. ``train`` returns the metrics (a
Hydra sweeper optimises one of them) and the objects it built; ``run`` returns the metrics.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from transformers import AutoConfig, AutoTokenizer

from sgpo.algos.update import skips_zero_advantage
from sgpo.callbacks import Evaluator, StepCheckpoint, StopRules, verify_checkpoint
from sgpo.config import TrainConfig, load_train_config
from sgpo.data.datamodule import ProfiledDataModule
from sgpo.data.selection import GroupCosts, group_costs
from sgpo.engines import build_engine
from sgpo.engines.base import SamplingParams
from sgpo.evaluation import flops_schedule
from sgpo.flops import ModelShape
from sgpo.io import atomic_write_json
from sgpo.loggers import build_loggers, log_data_summary
from sgpo.models import load_policy, prepare_model, weights_fingerprint
from sgpo.module import SGPOModule, dynamic_sampling_refusal
from sgpo.profiling.runner import get_profile
from sgpo.profiling.store import DifficultyProfile
from sgpo.progress import RunProgressBar, quiet_known_noise
from sgpo.prompts import encode_queries, prompt_encoder
from sgpo.tasks import build_task

log = logging.getLogger(__name__)


def run_dir_of(cfg: DictConfig) -> Path:
    """The Hydra run folder, or ``paths.run_dir`` when set (tests, plain Python)."""
    if cfg.paths.get("run_dir"):
        return Path(cfg.paths.run_dir)
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def validate(cfg: DictConfig) -> TrainConfig:
    """Refuse a bad config at start, naming the key: types and ranges of every section
    (sgpo.config), then registry names and the data policy. Returns the typed sections."""
    typed_cfg = load_train_config(cfg)
    validate_data_policy(cfg)
    validate_processes(cfg)
    if cfg.algo.train_rows is not None and cfg.algo.train_rows_rule != "max_variance" and cfg.algo.dynamic_sampling:
        # only max_variance keeps a mixed group mixed; DAPO's refills promise mixed groups
        raise ValueError(f"algo.train_rows_rule={cfg.algo.train_rows_rule} with algo.dynamic_sampling=true: the rule "
                         "may cut a mixed group to equal rewards, which DAPO's refills exist to avoid; "
                         "use algo.train_rows_rule=max_variance")
    if cfg.algo.get("min_mixed_groups") is not None and (not cfg.algo.skip_zero_adv or float(cfg.loss.get("beta", 0.0))):
        # the waiting store keeps mixed groups only: degenerate rows would train (for nothing, or for the KL) otherwise
        raise ValueError(f"algo.min_mixed_groups={cfg.algo.min_mixed_groups} keeps only mixed groups for its updates, "
                         f"so it needs algo.skip_zero_adv=true (now {cfg.algo.skip_zero_adv}) and loss.beta=0 "
                         f"(now {cfg.loss.get('beta', 0.0)}); set those or algo.min_mixed_groups=null")
    return typed_cfg


def planned_processes(trainer_cfg) -> int | None:
    """How many training processes a trainer config starts: devices (an int, or a list of device
    ids) x num_nodes; None when Lightning decides at run time (devices "auto" or -1)."""
    devices = trainer_cfg.get("devices", 1)
    if isinstance(devices, str) and devices.strip().isdigit():
        devices = int(devices)
    if isinstance(devices, bool) or not isinstance(devices, (int, list, ListConfig)):
        return None
    count = len(devices) if isinstance(devices, (list, ListConfig)) else devices
    return None if count < 0 else count * int(trainer_cfg.get("num_nodes", 1) or 1)


def validate_processes(cfg: DictConfig) -> None:
    """Settings that need one process, refused at start (before profiling) when the trainer plans
    several; the module checks the real world size again at setup for "auto" device counts."""
    processes = planned_processes(cfg.trainer)
    if processes is not None and processes > 1 and OmegaConf.select(cfg, "algo.dynamic_sampling"):
        raise dynamic_sampling_refusal(f"trainer.devices x trainer.num_nodes = {processes}")


def validate_data_policy(cfg: DictConfig) -> None:
    """Registry names and data-policy ranges, checked before any profiling or loading work.

    Unknown names raise the registry's KeyError, which lists the valid ones; out-of-range
    values name their key.
    """
    from sgpo.algos.losses import LOSSES
    from sgpo.data import ALLOCATIONS, CURRICULA, FILTERS
    from sgpo.profiling.runner import validate_profile_cfg
    from sgpo.tasks import TASKS

    for registry, key in ((FILTERS, "filter.name"), (ALLOCATIONS, "allocation.name"), (CURRICULA, "curriculum.name"),
                          (LOSSES, "loss.name"), (TASKS, "task.type")):
        name = OmegaConf.select(cfg, key)
        if name not in registry:
            raise KeyError(f"{key}={name!r} is not registered; valid: {', '.join(registry.names())}")
    validate_profile_cfg(cfg)
    if cfg.get("selection") is not None:
        validate_selection(cfg)
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


def validate_selection(cfg: DictConfig) -> None:
    """The adaptive sampler's rule, tried once on a dummy candidate: an unknown rule, value or
    parameter is refused naming ``selection.rule``; the largest size must fit a step."""
    from sgpo.data.selection import SELECTIONS, GroupCosts

    unused = {g: cfg[g].name for g, name in PROFILE_FREE.items() if cfg[g].name != name}
    if unused:
        raise ValueError(f"{', '.join(f'{g}={n}' for g, n in unused.items())}: with a selection config the adaptive "
                         f"sampler sizes and orders the groups, so filter / allocation / curriculum would be ignored; "
                         f"leave them at {', '.join(f'{g}={n}' for g, n in PROFILE_FREE.items())} or set selection=null")
    if cfg.data.refresh_p_hat:
        raise ValueError("data.refresh_p_hat=true: the adaptive sampler's posterior already follows the policy; "
                         "set it to false or use selection=null (method=sgpo_refresh)")
    if cfg.algo.dynamic_sampling:
        raise ValueError("algo.dynamic_sampling=true with a selection config: DAPO's refills would take extra "
                         "sampler steps (and posterior decays) per training step; use one of them")
    rule = dict(OmegaConf.to_container(cfg.selection.rule, resolve=True))
    name = rule.pop("name")
    if name not in SELECTIONS:
        raise KeyError(f"selection.rule.name={name!r} is not registered; valid: {', '.join(SELECTIONS.names())}")
    one = np.ones(1)
    try:
        SELECTIONS.get(name)(one, one, GroupCosts(one, one, one), float(cfg.data.rollouts_per_step), **rule,
                             screen=int(cfg.selection.screen), commit_threshold=float(cfg.selection.commit_threshold),
                             normalize_std=bool(cfg.advantage.normalize_std))
    except (TypeError, KeyError, ValueError) as err:
        raise ValueError(f"selection.rule={rule | {'name': name}}: {err}") from None
    if "sizes" not in rule:
        raise ValueError("selection.rule.sizes is missing: list the group sizes the rule may give (e.g. [2, 4, 8, 16])")
    largest = max(int(s) for s in rule["sizes"])
    if int(cfg.data.rollouts_per_step) < largest:
        raise ValueError(f"data.rollouts_per_step={cfg.data.rollouts_per_step} is smaller than the largest group "
                         f"selection.rule.sizes allows ({largest}); raise it to at least {largest}")


# The data policy that needs no p-hat: the only one allowed with profile.enabled=false.
PROFILE_FREE = {"filter": "none", "allocation": "uniform", "curriculum": "random"}


def unprofiled(cfg: DictConfig, task) -> tuple[DifficultyProfile, None]:
    """No profiling pass (plain GRPO/DAPO, or the adaptive selection with its online prior): every
    train query, no outcomes, no profile FLOPs charged."""
    wrong = {g: cfg[g].name for g, name in PROFILE_FREE.items() if cfg[g].name != name}
    if wrong and cfg.get("selection") is None:  # the adaptive sampler starts from a flat prior instead
        raise ValueError(f"profile.enabled=false, but {', '.join(f'{g}={n}' for g, n in wrong.items())} needs p-hat; "
                         f"use {', '.join(f'{g}={n}' for g, n in PROFILE_FREE.items())} or profile.enabled=true")
    queries = task.split(cfg.profile.split)
    queries = queries[: cfg.profile.max_queries] if cfg.profile.max_queries else queries
    return DifficultyProfile.unprofiled([q.id for q in queries]), None


def selection_costs(cfg: DictConfig, profile: DifficultyProfile, queries, task) -> GroupCosts:
    """The adaptive sampler's cost model [Q]: prompt lengths and mean completion lengths from the
    profile; without one, prompts encoded here and completions assumed half of max_new_tokens. The
    prompt is prefilled once per group where the engine shares it (hf with prefix_sharing), and
    degenerate groups cost training too where they are trained on (algo.skip_zero_adv=false, or a
    KL term), and a group trains at most algo.train_rows rows where that is set.
    ``selection.query_lengths=false`` prices every query at the dataset's mean lengths, so the
    rule does not favour short problems for being cheap."""
    shape = ModelShape.from_config(AutoConfig.from_pretrained(cfg.model.path))
    flags = {"shares_prompt": bool(cfg.engine.get("prefix_sharing", False)),
             "trains_zero_advantage": not skips_zero_advantage(cfg.algo.skip_zero_adv, bool(cfg.loss.get("beta"))),
             "train_rows": cfg.algo.get("train_rows")}
    if profile.num_samples:
        prompts, completions = profile.prompt_tokens.astype(float), profile.completion_tokens.mean(axis=1)
    else:
        by_id = {q.id: q for q in queries}
        encode = prompt_encoder(AutoTokenizer.from_pretrained(cfg.model.path), cfg.model)
        prompts = np.array([len(encode(task.prompt_text(by_id[qid]))) for qid in profile.query_ids], dtype=float)
        completions = np.full(len(prompts), cfg.rollout.max_new_tokens / 2)
    if not cfg.selection.query_lengths:
        prompts, completions = np.full_like(prompts, prompts.mean()), np.full_like(completions, completions.mean())
    return group_costs(shape, prompts, completions, **flags)


def run(cfg: DictConfig) -> dict[str, Any]:
    """``train(cfg)``'s metrics."""
    return train(cfg)[0]


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Profile, train and evaluate as ``cfg`` says; returns (metrics, the objects built)."""
    started = time.time()
    typed_cfg = validate(cfg)
    if typed_cfg.run.num_threads:
        torch.set_num_threads(typed_cfg.run.num_threads)
    pl.seed_everything(typed_cfg.run.seed, workers=True, verbose=False)
    seed = typed_cfg.run.seed
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
    train_queries = task.split(cfg.profile.split)
    selection = node("selection") if cfg.get("selection") is not None else None
    costs = selection_costs(cfg, profile, train_queries, task) if selection is not None else None
    datamodule = ProfiledDataModule(profile, train_queries, node("filter"), node("allocation"),
                                    node("curriculum"), node("data"), seed=seed, selection_cfg=selection, costs=costs,
                                    normalize_std=typed_cfg.advantage.normalize_std)
    data_summary = datamodule.summary()
    log.info("data: %s", json.dumps(data_summary))

    policy, tokenizer = load_policy(cfg.model.path, cfg.model.dtype)
    policy.train()  # from_pretrained returns eval mode; Lightning expects training mode at fit start
    encode = prompt_encoder(tokenizer, cfg.model)
    reference = None
    if node("loss").get("beta"):  # a KL term needs the frozen initial policy
        reference, _ = load_policy(cfg.model.path, cfg.model.dtype)
        reference.requires_grad_(False)
    rollout = typed_cfg.rollout
    sampling = SamplingParams(rollout.temperature, rollout.top_p, rollout.max_new_tokens)

    def engine_factory(model):
        return build_engine(cfg.engine, model, tokenizer, cfg.model.path, seed=seed)

    module = SGPOModule(policy, tokenizer, task, datamodule.queries, engine_factory, sampling,
                        loss=node("loss"), normalize_std=typed_cfg.advantage.normalize_std, algo=typed_cfg.algo,
                        optim=typed_cfg.optim, profile_flops=float(profile_flops), seed=seed, reference=reference,
                        encode=encode, screen=typed_cfg.selection.screen if typed_cfg.selection else 0)
    module.sampler = datamodule.sampler

    ev = typed_cfg.eval
    eval_splits = {}
    for split in ev.splits:
        queries = task.split(split)[: ev.max_queries] if ev.max_queries else task.split(split)
        if not queries:
            raise ValueError(f"eval.splits={list(ev.splits)}: the task's {split!r} split has no queries; "
                             f"remove it from eval.splits or give the task a {split} split")
        eval_splits[split] = (queries, encode_queries(encode, task, queries))
    evaluator = Evaluator(eval_splits, ev.every_n_steps, ev.k, rollout.max_new_tokens, ev.temperature, seed=seed,
                          at_total_flops=flops_schedule(node("eval")["at_total_flops"]))
    stop = StopRules(typed_cfg.train.max_steps, typed_cfg.train.max_total_flops)
    callbacks = [evaluator, stop]
    if typed_cfg.checkpoint.every_n_steps:
        callbacks.append(StepCheckpoint(run_dir / "checkpoints", typed_cfg.checkpoint.every_n_steps,
                                        typed_cfg.checkpoint.keep_all))
    loggers = build_loggers(cfg.get("logger"), run_dir)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    log_data_summary(loggers, profile.success_rates().tolist() if profile.outcomes.size else None,
                     profile.num_samples, data_summary)
    trainer_args = OmegaConf.to_container(cfg.trainer, resolve=True)
    if trainer_args.get("enable_progress_bar", True):  # Lightning refuses a bar callback when the bar is off
        callbacks.append(RunProgressBar(total_steps=typed_cfg.train.max_steps))
    quiet_known_noise()
    trainer = pl.Trainer(
        logger=loggers, callbacks=callbacks, max_epochs=1, max_steps=-1,
        enable_checkpointing=False, num_sanity_val_steps=0, log_every_n_steps=1, default_root_dir=str(run_dir),
        **trainer_args,
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
    split = ev.splits[0]
    metrics = {
        f"{split}/pass@1_before": before.get(f"{split}/pass@1"),
        f"{split}/mean@k_before": before.get(f"{split}/mean@k"),
        **{k: v for k, v in final.items()},
        **module.ledger.metrics(),
        "train/steps": module.rollout_step,
        "train/skipped_updates": module.counters.get("train/skipped_updates", 0.0),
        "train/short_steps_total": module.counters.get("train/short_steps_total", 0.0),  # DAPO at its generation cap
        "train/rollouts": module.counters.get("train/rollouts", 0.0),  # sampled, trained on or not
        "train/downsampled_rollouts_total": module.counters.get("train/downsampled_rollouts_total", 0.0),  # PODS cut
        # algo.min_mixed_groups: steps that waited for mixed groups, and the groups still waiting at the end (untrained)
        "train/deferred_steps_total": module.counters.get("train/deferred_steps_total", 0.0),
        "train/pending_mixed_groups": module.counters.get("train/pending_mixed_groups", 0.0),
        "train/stop_reason": stop.reason or "end of data",
        "profile/path": str(profile_dir) if profile_dir else None,
        "profile/num_samples": profile.num_samples,
        "wall_s": time.time() - started,
        **{k: v for k, v in data_summary.items()},
        "eval_history": evaluator.history,
        "world_size": trainer.world_size,
    }
    objects = {"cfg": cfg, "typed_cfg": typed_cfg, "task": task, "profile": profile, "datamodule": datamodule,
               "module": module, "callbacks": callbacks, "loggers": loggers, "trainer": trainer}
    if trainer.world_size > 1:  # replicas must end identical, and plan identically: say so in every rank's log
        log.info("rank %d of %d: final weights sha256 %s, sampler plan sha256 %s (cycle %d), total FLOPs %.6e",
                 trainer.global_rank, trainer.world_size, weights_fingerprint(module.policy),
                 module.sampler.plan_digest(), module.sampler.state.cycle, module.ledger.total)
    if not trainer.is_global_zero:
        return metrics, objects
    atomic_write_json(run_dir / "metrics.json", metrics)
    for logger in trainer.loggers:
        if hasattr(logger.experiment, "summary"):  # wandb: final numbers go to the run summary
            logger.experiment.summary.update({k: v for k, v in metrics.items()
                                              if isinstance(v, (int, float, str)) and v is not None})
            logger.experiment.finish()
    print(f"{split}/pass@1: {metrics[f'{split}/pass@1_before']:.3f} -> {final[f'{split}/pass@1']:.3f}  "
          f"total FLOPs {module.ledger.total:.3e}  steps {module.rollout_step}", flush=True)
    print(f"run: {run_dir}", flush=True)
    return metrics, objects
