"""``SGPOModule``: the LightningModule that wires one RL step together and logs it.

One training step (manual optimisation):
  1. the sampler gives the step's (query, group size) pairs; this rank takes its share;
  2. the ``RolloutCollector`` samples and scores the groups (DAPO: drops and refills) and
     charges rollout FLOPs to the ledger;
  3. the observations go back to the sampler, shared over ranks (every rank plans alike);
  4. (``algo.train_rows``) each group larger than that is cut to the rollouts a down-sampling
     rule keeps (PODS: sample many, train on few); group-normalised advantages of what is
     trained; then the ``PolicyUpdater`` runs ``num_iterations`` x
     ``minibatches`` optimiser steps, normalised by the job-wide batch (exact skipping and DDP);
     with ``algo.min_mixed_groups`` = K the mixed groups wait instead, over steps, until K are
     gathered job-wide, and one update trains them (sgpo/algos/accumulate.py);
  5. the new weights go into the engine (a no-op for ``hf``, a weight copy for ``vllm``);
  6. the ledger settles the step's FLOPs over ranks; ``train/*``, ``actor/*``, ``compute/*``,
     ``curriculum/*`` are logged.

The parts live in sgpo/rollouts/collector.py, sgpo/algos/update.py and sgpo/flops.py; this
module holds Lightning's hooks, the checkpoint state and the logging.
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

from sgpo.algos.accumulate import PendingGroups
from sgpo.algos.advantages import group_advantages
from sgpo.algos.downsample import DOWNSAMPLERS
from sgpo.algos.losses import LOSSES
from sgpo.algos.update import PolicyUpdater, UpdateResult
from sgpo.engines.base import Engine, SamplingParams, derive_seed
from sgpo.flops import FlopsLedger, ModelShape
from sgpo.rollouts import CollectedGroups, RolloutBatch, RolloutCollector, pack_rollouts
from sgpo.tasks.base import Query, Task

log = logging.getLogger(__name__)


def dynamic_sampling_refusal(processes: str) -> ValueError:
    """The error for DAPO's dynamic sampling with several processes (``processes`` says how many and
    from what), raised at start from the trainer config (sgpo.training) and at setup from the real
    world size (for device counts Lightning decides at run time)."""
    return ValueError(f"algo.dynamic_sampling (DAPO) needs the same number of generation batches on every rank; "
                      f"it is not supported with several processes yet ({processes}): use trainer.devices=1")


class SGPOModule(pl.LightningModule):
    """policy: the causal LM trained; reference: the frozen initial policy (only with a KL term).

    loss: the loss config (``name`` + the loss's own parameters); normalize_std: the advantage
    setting; algo, optim: the typed ``algo`` and ``optim`` sections (sgpo.config).
    """

    def __init__(self, policy: torch.nn.Module, tokenizer, task: Task, train_queries: list[Query],
                 engine_factory: Callable[[torch.nn.Module], Engine], sampling: SamplingParams, *,
                 loss: dict[str, Any], normalize_std: bool, algo, optim, profile_flops: float, seed: int,
                 reference: torch.nn.Module | None = None, encode: Callable[[str], list[int]] | None = None,
                 screen: int = 0) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.policy = policy
        # The frozen reference is not a submodule: never trained nor checkpointed (it is the initial
        # policy, reloaded from model.path), and as one Lightning would warn at fit start that it is
        # in eval mode, which it must be.
        object.__setattr__(self, "reference", reference)
        self.tokenizer = tokenizer
        self.task = task
        self.train_queries = train_queries
        encode = encode or (lambda text: tokenizer(text).input_ids)  # chat models pass sgpo.prompts.prompt_encoder
        self.prompt_ids = [encode(task.prompt_text(q)) for q in train_queries]
        self.engine_factory = engine_factory
        self.engine: Engine | None = None
        self.sampling = sampling
        self.loss_params = dict(loss)
        self.loss_fn = LOSSES.get(self.loss_params.pop("name"))
        self.normalize_std = bool(normalize_std)
        self.algo, self.optim_cfg = algo, optim
        self.train_rows = algo.train_rows  # PODS: rows trained per group (None: all)
        self.downsample = DOWNSAMPLERS.get(algo.train_rows_rule)
        # algo.min_mixed_groups = K: mixed groups wait over steps until K are gathered job-wide
        self.min_mixed_groups = algo.min_mixed_groups
        self.pending = PendingGroups(tokenizer.pad_token_id) if self.min_mixed_groups else None
        self.shape = ModelShape.from_config(policy.config)
        self.ledger = FlopsLedger(profile_flops)
        self.seed = int(seed)
        self.rollout_step = 0
        self.sampler = None  # the data module's CurriculumBatchSampler (set in setup, or by the runner)
        self.data_exhausted = False
        self.counters: dict[str, float] = defaultdict(float)
        self.collector = RolloutCollector(self.get_engine, task, train_queries, self.prompt_ids, sampling, self.shape,
                                          self.ledger, dynamic_sampling=bool(algo.dynamic_sampling),
                                          max_generation_batches=int(algo.max_generation_batches),
                                          refill=self._refill, screen=screen, commit=self._commit)
        self.updater: PolicyUpdater | None = None  # built on the first step: it needs the optimiser

    # ---- Lightning hooks ---------------------------------------------------------------------
    def configure_optimizers(self):
        return torch.optim.AdamW(self.policy.parameters(), lr=float(self.optim_cfg.lr),
                                 betas=tuple(self.optim_cfg.betas), weight_decay=float(self.optim_cfg.weight_decay))

    def setup(self, stage: str) -> None:
        # The data module re-builds its sampler for this rank in its own setup (which runs first).
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and getattr(datamodule, "sampler", None) is not None:
            self.sampler = datamodule.sampler
        if self.world_size > 1 and self.algo.dynamic_sampling:
            raise dynamic_sampling_refusal(f"world size = {self.world_size}")
        self.ledger.reduce = self._global_sum if self.world_size > 1 else None

    @property
    def world_size(self) -> int:
        return int(self.trainer.world_size) if self._trainer is not None else 1

    def _global_sum(self, values: list[float]) -> list[float]:
        """Sum over ranks (identity in a single process)."""
        if self.world_size == 1:
            return list(values)
        total = self.trainer.strategy.reduce(torch.tensor(values, dtype=torch.float64, device=self.device),
                                             reduce_op="sum")
        return [float(v) for v in total.tolist()]

    def on_fit_start(self) -> None:
        self.policy.train()
        if self.reference is not None:  # not a submodule, so the strategy did not move it
            self.reference.to(self.device)

    def get_engine(self) -> Engine:
        if self.engine is None:
            self.engine = self.engine_factory(self.policy)
        return self.engine

    def get_updater(self) -> PolicyUpdater:
        if self.updater is None:
            self.updater = PolicyUpdater(
                self.policy, self.optimizers(), self.loss_fn, self.loss_params,
                iterations=int(self.algo.num_iterations), minibatches=int(self.algo.minibatches),
                skip_zero_adv=bool(self.algo.skip_zero_adv), grad_clip=float(self.optim_cfg.grad_clip),
                temperature=self.sampling.temperature or 1.0, ledger=self.ledger, shape=self.shape,
                reference=self.reference, reduce=self._global_sum, world_size=self.world_size,
                backward=self.manual_backward)
        return self.updater

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["sgpo"] = {"ledger": self.ledger.state_dict(), "rollout_step": self.rollout_step,
                              "counters": dict(self.counters), "sampler": self.sampler.state_dict()}
        if self.pending is not None:  # mixed groups waiting for an update (this rank's)
            checkpoint["sgpo"]["pending"] = self.pending.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # checkpoints of KL runs written while the reference was a submodule carry its weights
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("reference.")}
        state = checkpoint["sgpo"]
        self.ledger.load_state_dict(state["ledger"])
        self.rollout_step = int(state["rollout_step"])
        self.counters = defaultdict(float, state.get("counters", {}))
        self.sampler.load_state_dict(state["sampler"])
        if self.pending is not None and "pending" in state:
            self.pending.load_state_dict(state["pending"])

    # ---- the step ----------------------------------------------------------------------------
    def _refill(self, groups: int) -> list[tuple[int, int]]:
        """DAPO: whole sampler steps until at least ``groups`` more groups (the collector cuts the excess)."""
        out: list[tuple[int, int]] = []
        while self.sampler is not None and len(out) < groups:
            step = self.sampler.next_step()
            if step is None:
                break
            out.extend(self.sampler.local(step))
        return out

    def _commit(self, query: int, successes: float, screen: int, group: int) -> bool:
        """Screen, then commit: the sampler's posterior decides after a degenerate screen."""
        decide = getattr(self.sampler, "commit", None)
        return bool(decide(query, successes, screen, group)) if decide is not None else False

    def training_step(self, batch: Any, batch_idx: int) -> None:
        step = self.sampler.next_step()
        if step is None:
            self.data_exhausted = True
            return
        phase_index = self.sampler.state.phase
        started = time.perf_counter()
        screened, committed, short = self.collector.screened, self.collector.committed, self.collector.short_steps
        groups = self.collector.collect(self.sampler.local(step), self.seed, self.rollout_step)
        self._observe(step, groups)
        # the down-sampling's ties are broken by sub-stream 98 (the collector's rounds use 0, 1, ...; a
        # shared number would only seed another generator the same way)
        rollouts, lengths, adv_metrics = self._pack(groups, derive_seed(self.seed, self.rollout_step, 98))
        packed = len(rollouts)  # the step's rows after down-sampling
        rollouts, lengths = self._gather(rollouts, lengths)
        if rollouts is None:  # too few mixed groups so far: no update, the policy stays as it is
            result = UpdateResult()
        else:
            result = self.get_updater().update(rollouts, lengths, derive_seed(self.seed, self.rollout_step, 99))
        if self.engine is not None and result.updates:
            self.engine.sync_weights(self.policy)
        self.ledger.settle()
        # over every rollout of the step's groups, down-sampled away or not (the policy's success rate);
        # those the batch lacks were cut by down-sampling; all of them job-wide sums over ranks
        in_groups = sum(map(len, groups.rewards))
        reward_sum, reward_count, sampled, cut = self._global_sum(
            [float(sum(map(sum, groups.rewards))), float(in_groups), float(groups.rollouts), float(in_groups - packed)])
        self.rollout_step += 1
        self.counters["train/rollouts"] += sampled
        if self.train_rows is not None:
            self.counters["train/downsampled_rollouts_total"] += cut
        self.counters["train/generation_batches"] = groups.generation_batches
        if self.collector.dynamic_sampling:  # steps any rank trained on fewer groups than asked (DAPO's cap)
            (short,) = self._global_sum([float(self.collector.short_steps - short)])
            self.counters["train/short_steps_total"] += float(short > 0)
        if self.collector.screen:  # running totals over ranks (checkpointed with the other counters)
            screened, committed = self._global_sum([self.collector.screened - screened,
                                                    self.collector.committed - committed])
            self.counters["train/screened_groups_total"] += screened
            self.counters["train/committed_groups_total"] += committed
        step_metrics = {**result.metrics, "perf/tokens_per_s": sum(lengths) / max(time.perf_counter() - started, 1e-9)}
        self._log_step(reward_sum / reward_count if reward_count else 0.0, groups, adv_metrics, step_metrics,
                       result.updates, result.updates - result.zero_gradient_steps, result.skipped, phase_index)

    def _gather(self, rollouts: RolloutBatch, lengths: list[int]) -> tuple[RolloutBatch | None, list[int]]:
        """With ``algo.min_mixed_groups`` = K: add the step's mixed groups to those waiting and hand them
        all back once K wait job-wide (else None: no update this step). Without it: the step's batch."""
        if self.pending is None:
            return rollouts, lengths
        self.pending.add(rollouts, lengths)
        (waiting,) = self._global_sum([float(self.pending.groups)])
        self.counters["train/pending_mixed_groups"] = waiting
        if waiting < self.min_mixed_groups:
            self.counters["train/deferred_steps_total"] += 1
            return None, []
        self.counters["train/pending_mixed_groups"] = 0.0
        return self.pending.take()

    def _observe(self, step: list[tuple[int, int]], groups: CollectedGroups) -> None:
        """Feed the trained groups' successes to the sampler; with several ranks every rank gets every
        rank's groups (rank r holds positions r, r + N, ... of the global step), so plans stay equal."""
        if self.world_size == 1:
            for (query, _), rewards in zip(groups.specs, groups.rewards):
                self.sampler.observe(query, sum(rewards), len(rewards))
            return
        rank, size = self.global_rank, self.world_size
        # Every rank must have planned the same step (same posterior, same rule): a rank that did not
        # would all-reduce a list of another length below and hang; compare lengths first, cheaply.
        total, squares = self._global_sum([float(len(step)), float(len(step)) ** 2])
        if abs(squares * size - total * total) > 1e-6:
            raise RuntimeError(f"rank {rank} planned a step of {len(step)} groups, other ranks planned others "
                               f"(sum {total:g} over {size} ranks): the sampler's state differs between ranks")
        values = [0.0] * (2 * len(step))
        for j, rewards in enumerate(groups.rewards):
            pos = rank + j * size
            values[2 * pos], values[2 * pos + 1] = float(sum(rewards)), float(len(rewards))
        values = self._global_sum(values)
        for pos, (query, _) in enumerate(step):
            self.sampler.observe(query, values[2 * pos], values[2 * pos + 1])

    def _pack(self, groups: CollectedGroups, seed: int = 0) -> tuple[RolloutBatch, list[int], dict[str, float]]:
        """Flatten the groups into one padded batch with group-normalised advantages.

        With ``algo.train_rows`` = m, a group of n > m rollouts keeps the m its down-sampling rule
        picks (``seed`` breaks ties among equal rewards); the others were sampled and observed but
        are not trained on, and the advantages are those of the kept m.
        Returns the batch (B rows), each row's prompt + completion length, and advantage metrics."""
        prompts, completions, rewards, group_index = [], [], [], []
        generator = torch.Generator().manual_seed(seed)
        for g, ((qi, _), cs, rs) in enumerate(zip(groups.specs, groups.completions, groups.rewards)):
            if self.train_rows is not None and len(rs) > self.train_rows:
                kept = self.downsample(torch.tensor(rs, dtype=torch.float64), self.train_rows, generator).tolist()
                cs, rs = [cs[i] for i in kept], [rs[i] for i in kept]
            for c, r in zip(cs, rs):
                prompts.append(self.prompt_ids[qi])
                completions.append(list(c.token_ids))
                rewards.append(r)
                group_index.append(g)
        if not rewards:
            return RolloutBatch.empty(), [], {"num_groups": 0, "num_degenerate_groups": 0, "frac_zero_adv_groups": 0.0}
        adv, adv_metrics = group_advantages(torch.tensor(rewards, dtype=torch.float32),
                                            torch.tensor(group_index, dtype=torch.long),
                                            normalize_std=self.normalize_std)
        batch = pack_rollouts(prompts, completions, self.tokenizer.pad_token_id, rewards, adv, group_index)
        return batch, [len(p) + len(c) for p, c in zip(prompts, completions)], adv_metrics

    def _log_step(self, reward_mean: float, groups: CollectedGroups, adv_metrics, step_metrics, updates,
                  learning_updates, skipped, phase) -> None:
        self.counters["train/skipped_updates"] += skipped
        comps = [c for cs in groups.completions for c in cs]
        specs = groups.specs
        # Running totals of the degenerate cases, so a run that hits them says so in its logs.
        self.counters["train/truncated_total"] += sum(c.finish_reason == "length" for c in comps)
        self.counters["train/empty_completions_total"] += sum(not c.text.strip() for c in comps)
        self.counters["train/zero_adv_groups_total"] += adv_metrics["num_degenerate_groups"]
        # steps that changed nothing by learning: no update, or only zero-gradient ones
        self.counters["train/steps_without_update"] += int(learning_updates == 0)
        metrics = {
            "train/reward_mean": reward_mean,
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
            **getattr(self.sampler, "last_step_info", {}),
            **self.ledger.metrics(),
        }
        if self.sampler is not None:
            self.sampler.report_reward(reward_mean)  # the job-wide mean: every rank's plateau rule agrees
        bar = {"train/reward_mean", "curriculum/phase", "compute/total_flops"}
        self.log_dict({k: v for k, v in metrics.items() if k not in bar}, on_step=True, batch_size=1)
        self.log_dict({k: metrics[k] for k in bar}, on_step=True, prog_bar=True, batch_size=1)
        if not math.isfinite(reward_mean):
            log.warning("non-finite reward mean at step %d", self.rollout_step)
