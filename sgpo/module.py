"""``SGPOModule``: the policy, its rollout engine and the RL update as a LightningModule.

One training step (manual optimisation):
  1. generate the step's groups through the engine (one call per distinct group size);
  2. score them with the task's verifier and compute group-normalised advantages;
  3. DAPO dynamic sampling, when on: drop zero-variance groups and refill from the sampler;
  4. ``num_iterations`` passes x ``minibatches`` optimiser steps of the policy loss, with
     gradient clipping; a NaN/inf loss skips that update and is logged;
  5. sync the new weights into the engine (a no-op for ``hf``, a weight copy for ``vllm``);
  6. charge the FLOPs ledger and log ``train/*``, ``actor/*``, ``compute/*``, ``curriculum/*``.

Rollouts of zero-advantage groups are not trained on when ``skip_zero_adv`` (their policy
gradient is exactly zero without a KL term), so they cost rollout FLOPs only.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch

from sgpo.algos.advantages import group_advantages
from sgpo.algos.losses import LOSSES
from sgpo.engines.base import Engine, SamplingParams, derive_seed
from sgpo.flops import FlopsLedger, ModelShape, rollouts_forward_flops, sequence_forward_flops, sequence_train_flops
from sgpo.rollouts import pack_rollouts, token_logprobs
from sgpo.tasks.base import Query, Task

log = logging.getLogger(__name__)


class SGPOModule(pl.LightningModule):
    def __init__(self, policy: torch.nn.Module, tokenizer, task: Task, train_queries: list[Query],
                 engine_factory: Callable[[torch.nn.Module], Engine], sampling: SamplingParams, loss: dict[str, Any],
                 algo: dict[str, Any], optim: dict[str, Any], profile_flops: float = 0.0, seed: int = 0,
                 reference: torch.nn.Module | None = None, encode: Callable[[str], list[int]] | None = None) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.policy = policy
        self.reference = reference
        self.tokenizer = tokenizer
        self.task = task
        self.train_queries = train_queries
        encode = encode or (lambda text: tokenizer(text).input_ids)  # chat models pass sgpo.prompts.prompt_encoder
        self.prompt_ids = [encode(task.prompt_text(q)) for q in train_queries]
        self.engine_factory = engine_factory
        self.engine: Engine | None = None
        self.sampling = sampling
        self.loss_cfg = dict(loss)
        self.loss_fn = LOSSES.get(self.loss_cfg.pop("name"))
        self.normalize_std = bool(self.loss_cfg.pop("normalize_std", True))
        self.algo = dict(algo)
        self.optim_cfg = dict(optim)
        self.shape = ModelShape.from_config(policy.config)
        self.ledger = FlopsLedger(profile_flops)
        self.seed = int(seed)
        self.rollout_step = 0
        self.sampler = None  # the data module's CurriculumBatchSampler, set by the training runner
        self.data_exhausted = False
        self.counters: dict[str, float] = defaultdict(float)

    # ---- Lightning hooks ---------------------------------------------------------------------
    def configure_optimizers(self):
        return torch.optim.AdamW(self.policy.parameters(), lr=float(self.optim_cfg["lr"]),
                                 betas=tuple(self.optim_cfg.get("betas", (0.9, 0.999))),
                                 weight_decay=float(self.optim_cfg.get("weight_decay", 0.0)))

    def setup(self, stage: str) -> None:
        # The data module re-builds its sampler for this rank in its own setup (which runs first).
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and getattr(datamodule, "sampler", None) is not None:
            self.sampler = datamodule.sampler
        if self.world_size > 1 and self.algo.get("dynamic_sampling"):
            raise ValueError("algo.dynamic_sampling (DAPO) needs the same number of generation batches on every rank; "
                             "it is not supported with several processes yet: use trainer.devices=1")

    @property
    def world_size(self) -> int:
        return int(self.trainer.world_size) if self._trainer is not None else 1

    def _global_sum(self, values: list[float]) -> list[float]:
        """Sum over ranks (identity in a single process)."""
        if self.world_size == 1:
            return values
        total = self.trainer.strategy.reduce(torch.tensor(values, dtype=torch.float64, device=self.device),
                                             reduce_op="sum")
        return [float(v) for v in total.tolist()]

    def on_fit_start(self) -> None:
        self.policy.train()

    def get_engine(self) -> Engine:
        if self.engine is None:
            self.engine = self.engine_factory(self.policy)
        return self.engine

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["sgpo"] = {"ledger": self.ledger.state_dict(), "rollout_step": self.rollout_step,
                              "counters": dict(self.counters), "sampler": self.sampler.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["sgpo"]
        self.ledger.load_state_dict(state["ledger"])
        self.rollout_step = int(state["rollout_step"])
        self.counters = defaultdict(float, state.get("counters", {}))
        self.sampler.load_state_dict(state["sampler"])

    # ---- rollouts ----------------------------------------------------------------------------
    def generate_groups(self, specs: list[tuple[int, int]], step_seed: int):
        """Sample G_i completions for each (query index, G_i): returns per-spec completions and rewards."""
        engine = self.get_engine()
        by_size: dict[int, list[int]] = defaultdict(list)
        for pos, (_, g) in enumerate(specs):
            by_size[g].append(pos)
        completions: list[Any] = [None] * len(specs)
        for g, positions in sorted(by_size.items()):
            outs = engine.generate([self.prompt_ids[specs[p][0]] for p in positions], g, self.sampling,
                                   seed=derive_seed(step_seed, g))
            for p, cs in zip(positions, outs):
                completions[p] = cs
        queries = [self.train_queries[i] for i, _ in specs]
        rewards = self.task.score_batch(queries, [[c.text for c in cs] for cs in completions])
        return completions, rewards

    def _rollout_flops(self, specs, completions) -> list[float]:
        return [rollouts_forward_flops(self.shape, len(self.prompt_ids[i]), [c.num_tokens for c in cs])
                for (i, _), cs in zip(specs, completions)]

    def collect(self, specs: list[tuple[int, int]]):
        """Generate, score and (DAPO) refill: returns specs, completions, rewards of the groups to train on."""
        dynamic = self.algo.get("dynamic_sampling", False)
        target = len(specs)
        kept_specs, kept_completions, kept_rewards = [], [], []
        tries = 0
        while True:
            completions, rewards = self.generate_groups(specs, derive_seed(self.seed, self.rollout_step, tries))
            flops = self._rollout_flops(specs, completions)
            self.ledger.rollout += sum(flops)
            self.counters["train/rollouts"] += sum(len(cs) for cs in completions)
            for s, cs, rs, f in zip(specs, completions, rewards, flops):
                zero = max(rs) - min(rs) <= 1e-12
                if zero:
                    self.ledger.wasted += f
                if not (dynamic and zero):
                    kept_specs.append(s)
                    kept_completions.append(cs)
                    kept_rewards.append(rs)
            tries += 1
            if not dynamic or len(kept_specs) >= target:
                break
            if tries >= int(self.algo.get("max_generation_batches", 4)):
                raise RuntimeError(
                    f"DAPO dynamic sampling: only {len(kept_specs)} of {target} groups had mixed rewards after "
                    f"{tries} generation batches (algo.max_generation_batches); the data is too easy or too hard "
                    "for this policy: raise the cap or filter the data")
            specs = self._refill(target - len(kept_specs))
            if not specs:
                break
        self.counters["train/generation_batches"] = tries
        if dynamic:  # a refill may overshoot: train on exactly the step's number of groups
            return kept_specs[:target], kept_completions[:target], kept_rewards[:target]
        return kept_specs, kept_completions, kept_rewards

    def _refill(self, groups: int) -> list[tuple[int, int]]:
        """Whole sampler steps until at least ``groups`` more groups (DAPO oversamples, then truncates)."""
        out: list[tuple[int, int]] = []
        while self.sampler is not None and len(out) < groups:
            step = self.sampler.next_step()
            if step is None:
                break
            out.extend(self.sampler.local(step))
        return out

    # ---- the update --------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> None:
        step = self.sampler.next_step()
        if step is None:
            self.data_exhausted = True
            return
        before = (self.ledger.rollout, self.ledger.train, self.ledger.wasted)
        phase_index = self.sampler.state.phase
        started = time.perf_counter()
        specs, completions, rewards = self.collect(self.sampler.local(step))
        flat_prompts, flat_completions, flat_rewards, group_index = [], [], [], []
        for g, ((qi, _), cs, rs) in enumerate(zip(specs, completions, rewards)):
            self.sampler.observe(qi, rs)
            for c, r in zip(cs, rs):
                flat_prompts.append(self.prompt_ids[qi])
                flat_completions.append(list(c.token_ids))
                flat_rewards.append(r)
                group_index.append(g)
        rewards_t = torch.tensor(flat_rewards, dtype=torch.float32)
        gidx = torch.tensor(group_index, dtype=torch.long)
        adv, adv_metrics = group_advantages(rewards_t, gidx, normalize_std=self.normalize_std)
        batch_all = pack_rollouts(flat_prompts, flat_completions, self.tokenizer.pad_token_id, flat_rewards, adv,
                                  group_index)
        lengths = [len(p) + len(c) for p, c in zip(flat_prompts, flat_completions)]
        train_rows = torch.arange(len(batch_all))
        if self.algo.get("skip_zero_adv", True) and not self.loss_cfg.get("beta"):
            train_rows = torch.nonzero(adv != 0).flatten()
        updates, skipped, step_metrics = self._update(batch_all, train_rows, lengths)
        if self.engine is not None and updates:
            self.engine.sync_weights(self.policy)
        if self.world_size > 1:  # the ledger counts every rank's FLOPs: the budget is the job's, not a rank's
            deltas = self._global_sum([now - then for now, then in
                                       zip((self.ledger.rollout, self.ledger.train, self.ledger.wasted), before)])
            self.ledger.rollout, self.ledger.train, self.ledger.wasted = (b + d for b, d in zip(before, deltas))
            reward_sum, count = self._global_sum([float(rewards_t.sum()), float(len(rewards_t))])
            rewards_t = torch.full((max(1, int(count)),), reward_sum / max(count, 1.0))  # the global mean, for logs/plateau
        self.rollout_step += 1
        step_metrics["perf/tokens_per_s"] = sum(lengths) / max(time.perf_counter() - started, 1e-9)
        self._log_step(rewards_t, specs, completions, adv_metrics, step_metrics, updates, skipped, phase_index)

    def _update(self, batch_all, train_rows, lengths):
        opt = self.optimizers()
        iterations = int(self.algo.get("num_iterations", 1))
        minibatches = int(self.algo.get("minibatches", 1))
        temperature = self.sampling.temperature or 1.0
        metrics: dict[str, float] = {}
        updates = skipped = 0
        distributed = self.world_size > 1
        if distributed:  # every rank must run the same number of backward passes (gradient all-reduce)
            if self._global_sum([float(len(train_rows))])[0] == 0:
                return 0, 0, metrics
            if len(train_rows) == 0:
                return self._null_updates(batch_all, iterations * minibatches, temperature)
        elif len(train_rows) == 0:
            return 0, 0, metrics
        batch = batch_all.select(train_rows)
        trained_lengths = [lengths[i] for i in train_rows.tolist()]
        self.policy.train()
        with torch.no_grad():
            old = token_logprobs(self.policy, batch.input_ids, batch.attention_mask, temperature) \
                if iterations > 1 else None
            ref = token_logprobs(self.reference, batch.input_ids, batch.attention_mask, temperature) \
                if self.reference is not None and self.loss_cfg.get("beta") else None
        fwd = float(sum(sequence_forward_flops(self.shape, n) for n in trained_lengths))
        self.ledger.train += fwd * ((old is not None) + (ref is not None))
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.rollout_step, 99))
        for _ in range(iterations):
            order = torch.randperm(len(batch), generator=generator)
            for chunk in torch.tensor_split(order, minibatches):
                if len(chunk) == 0:  # fewer rows than minibatches
                    if distributed:
                        updates += self._null_pass(opt, batch_all, temperature)
                    continue
                mb = batch.select(chunk)
                logp = token_logprobs(self.policy, mb.input_ids, mb.attention_mask, temperature)
                old_mb = old[chunk] if old is not None else logp.detach()
                ref_mb = ref[chunk] if ref is not None else None
                loss, m = self.loss_fn(logp, old_mb, mb.advantages, mb.loss_mask, ref_mb, **self.loss_cfg)
                chunk_flops = [sequence_train_flops(self.shape, trained_lengths[i]) for i in chunk.tolist()]
                self.ledger.train += float(sum(chunk_flops))
                self.ledger.wasted += float(sum(f for f, a in zip(chunk_flops, mb.advantages.tolist()) if a == 0))
                finite = bool(torch.isfinite(loss))
                if distributed:  # one rank's NaN skips the update everywhere
                    finite = self._global_sum([float(not finite)])[0] == 0
                if not finite:
                    skipped += 1
                    log.warning("non-finite loss (%s) at rollout step %d: update skipped", loss.item(),
                                self.rollout_step)
                    opt.zero_grad(set_to_none=True)
                    continue
                opt.zero_grad(set_to_none=True)
                self.manual_backward(loss)
                grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(),
                                                           float(self.optim_cfg.get("grad_clip", 1.0)))
                if not torch.isfinite(grad_norm):
                    skipped += 1
                    log.warning("non-finite gradient norm at rollout step %d: update skipped", self.rollout_step)
                    opt.zero_grad(set_to_none=True)
                    continue
                opt.step()
                updates += 1
                metrics = {**m, "actor/grad_norm": float(grad_norm), "actor/loss": float(loss.detach())}
        return updates, skipped, metrics

    def _null_pass(self, opt, batch_all, temperature: float) -> bool:
        """One update with zero gradient from this rank, making the same collective calls as a real pass
        (finite-loss vote, backward all-reduce, optimiser step) so ranks stay in step and in sync.
        Returns whether the update happened (False when another rank's loss was not finite)."""
        if self._global_sum([0.0])[0] != 0:  # some rank's loss is not finite: every rank skips
            return False
        opt.zero_grad(set_to_none=True)
        row = batch_all.select(torch.arange(1))
        logp = token_logprobs(self.policy, row.input_ids, row.attention_mask, temperature)
        self.manual_backward(logp.sum() * 0.0)  # receives the other ranks' averaged gradients
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), float(self.optim_cfg.get("grad_clip", 1.0)))
        if not torch.isfinite(grad_norm):
            opt.zero_grad(set_to_none=True)
            return False
        opt.step()
        return True

    def _null_updates(self, batch_all, passes: int, temperature: float):
        """This rank has nothing to train on but others do: join every one of their passes."""
        opt = self.optimizers()
        done = sum(self._null_pass(opt, batch_all, temperature) for _ in range(passes))
        return done, passes - done, {}

    def _log_step(self, rewards_t, specs, completions, adv_metrics, step_metrics, updates, skipped, phase) -> None:
        self.counters["train/skipped_updates"] += skipped
        comps = [c for cs in completions for c in cs]
        # Running totals of the degenerate cases, so a run that hits them says so in its logs.
        self.counters["train/truncated_total"] += sum(c.finish_reason == "length" for c in comps)
        self.counters["train/empty_completions_total"] += sum(not c.text.strip() for c in comps)
        self.counters["train/zero_adv_groups_total"] += round(adv_metrics["frac_zero_adv_groups"] * len(specs))
        self.counters["train/steps_without_update"] += int(updates == 0)
        metrics = {
            "train/reward_mean": float(rewards_t.mean()) if len(rewards_t) else 0.0,
            "train/frac_zero_adv_groups": adv_metrics["frac_zero_adv_groups"],
            "train/group_size_mean": sum(g for _, g in specs) / max(1, len(specs)),
            "train/groups": float(len(specs)),
            "train/updates": float(updates),
            "train/completion_tokens_mean": sum(c.num_tokens for c in comps) / max(1, len(comps)),
            "train/frac_truncated": sum(c.finish_reason == "length" for c in comps) / max(1, len(comps)),
            "train/steps": float(self.rollout_step),
            "curriculum/phase": float(phase),
            **dict(self.counters),
            **step_metrics,
            **self.ledger.metrics(),
        }
        if self.sampler is not None:
            self.sampler.report_reward(metrics["train/reward_mean"])
        bar = {"train/reward_mean", "curriculum/phase", "compute/total_flops"}
        self.log_dict({k: v for k, v in metrics.items() if k not in bar}, on_step=True, batch_size=1)
        self.log_dict({k: metrics[k] for k in bar}, on_step=True, prog_bar=True, batch_size=1)
        if not math.isfinite(metrics["train/reward_mean"]):
            log.warning("non-finite reward mean at step %d", self.rollout_step)
