"""Lightning callbacks of a run: held-out evaluation, checkpoints, and the stop rules."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from sgpo.evaluation import evaluate
from sgpo.faults import crash_point
from sgpo.io import atomic_write, atomic_write_text, file_sha256

log = logging.getLogger(__name__)


class Evaluator(pl.Callback):
    """Greedy pass@1 and sampled mean@k (with standard errors) on held-out splits: before training,
    every N steps, at the first step whose total FLOPs reach each of ``at_total_flops`` (one
    evaluation when a step crosses several), and at the end.

    Logged as ``<split>/pass@1``, ``<split>/mean@k`` (and ``_se``) with ``compute/total_flops``
    beside them; ``eval/checkpoint_flops`` names the schedule point an evaluation served.
    """

    def __init__(self, splits: dict[str, tuple[list, list]], every_n_steps: int, k: int, max_new_tokens: int,
                 temperature: float, seed: int, at_total_flops: list[float]) -> None:
        self.splits, self.every, self.k = splits, int(every_n_steps), int(k)
        self.max_new_tokens, self.temperature, self.seed = int(max_new_tokens), float(temperature), int(seed)
        self.schedule = sorted(float(x) for x in at_total_flops)
        self.next_point = 0  # index of the first schedule point not reached yet
        self.history: list[dict[str, float]] = []
        self.last: dict[str, float] = {}

    def run(self, trainer: pl.Trainer, module, checkpoint: float | None = None) -> dict[str, float]:
        engine = module.get_engine()
        out: dict[str, float] = {} if checkpoint is None else {"eval/checkpoint_flops": checkpoint}
        for split, (queries, prompt_ids) in self.splits.items():
            metrics, flops = evaluate(engine, module.task, prompt_ids, queries, self.k, self.max_new_tokens,
                                      self.temperature, self.seed, module.shape)
            module.ledger.charge("eval", flops)
            out.update({f"{split}/{k}": v for k, v in metrics.items()})
        out.update(module.ledger.metrics())
        out["train/steps"] = float(module.rollout_step)
        self.history.append(out)
        self.last = out
        for logger in trainer.loggers:
            logger.log_metrics(out, step=module.rollout_step)
        log.info("eval at step %d (%.3e FLOPs): %s", module.rollout_step, module.ledger.total,
                 ", ".join(f"{k}={v:.3f}±{out.get(k + '_se', float('nan')):.3f}" for k, v in out.items()
                           if "@" in k and not k.endswith("_se")))
        return out

    def on_train_start(self, trainer, module) -> None:
        if module.rollout_step == 0 and not self.history:
            self.run(trainer, module)
            # schedule points the profile alone reaches are served by this first evaluation
            while self.next_point < len(self.schedule) and module.ledger.total >= self.schedule[self.next_point]:
                self.next_point += 1

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        total, reached = module.ledger.total, None
        while self.next_point < len(self.schedule) and total >= self.schedule[self.next_point]:
            reached = self.schedule[self.next_point] if reached is None else reached
            self.next_point += 1
        if reached is not None:
            self.run(trainer, module, checkpoint=reached)
        elif self.every > 0 and module.rollout_step % self.every == 0 and module.rollout_step > 0:
            self.run(trainer, module)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "next_point": self.next_point}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))
        self.next_point = int(state.get("next_point", 0))  # checkpoints written before the schedule existed: 0
        self.last = self.history[-1] if self.history else {}


class StepCheckpoint(pl.Callback):
    """Save ``<dir>/last.ckpt`` (and ``step-N.ckpt`` when ``keep_all``) every N rollout steps."""

    def __init__(self, dirpath: str | Path, every_n_steps: int, keep_all: bool = False) -> None:
        self.dirpath, self.every, self.keep_all = Path(dirpath), int(every_n_steps), keep_all

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.every > 0 and module.rollout_step % self.every == 0 and module.rollout_step > 0:
            self.dirpath.mkdir(parents=True, exist_ok=True)
            if self.keep_all:
                save_checkpoint(trainer, self.dirpath / f"step-{module.rollout_step}.ckpt")
            save_checkpoint(trainer, self.dirpath / "last.ckpt")
            crash_point(f"train:checkpoint:{module.rollout_step}")


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated or modified."""


def checksum_path(ckpt: Path) -> Path:
    return ckpt.with_name(ckpt.name + ".sha256")


def save_checkpoint(trainer, path: Path) -> None:
    """Write the checkpoint to a temporary file, rename it into place, then its sha256 beside it.

    A kill or a full disk mid-write leaves the previous checkpoint (and its checksum) intact.
    ``weights_only=False``: a resume needs the optimiser, loop and callback states too.
    """
    atomic_write(path, lambda tmp: trainer.save_checkpoint(tmp, weights_only=False))
    atomic_write_text(checksum_path(path), file_sha256(path) + "\n")


def verify_checkpoint(path: str | Path) -> None:
    """Refuse a checkpoint whose sha256 does not match the one written with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ckpt_path={path}: no such checkpoint file")
    sidecar = checksum_path(path)
    if not sidecar.is_file():
        log.warning("%s has no checksum file (%s): cannot verify it", path, sidecar.name)
        return
    want = sidecar.read_text().strip()
    if file_sha256(path) != want:
        raise CheckpointError(
            f"ckpt_path={path}: checksum does not match {sidecar.name} (truncated or modified); "
            f"resume from another checkpoint (keep them with checkpoint.keep_all=true) or start again")


class StopRules(pl.Callback):
    """End training at ``max_steps`` rollout steps, at the FLOPs budget, or when the data runs out."""

    def __init__(self, max_steps: int | None, max_total_flops: float | None) -> None:
        self.max_steps, self.max_total_flops = max_steps, max_total_flops
        self.reason = ""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.max_steps is not None and module.rollout_step >= self.max_steps:
            self.reason = f"reached max_steps={self.max_steps}"
        elif self.max_total_flops is not None and module.ledger.total >= float(self.max_total_flops):
            self.reason = f"reached the compute budget train.max_total_flops={float(self.max_total_flops):.3e}"
        elif module.data_exhausted:
            self.reason = "the curriculum ran out of data (data.cycles)"
        if self.reason:
            trainer.should_stop = True
