"""A Lightning fit wired as sgpo.training wires it (log_every_n_steps=1, the progress bar,
sgpo.callbacks.StepCheckpoint, an endless step stream) and its resume print no warnings of their
own making, and the bar is readable in both."""

from __future__ import annotations

import itertools
import logging

import pytorch_lightning as pl
import torch

from sgpo.callbacks import StepCheckpoint
from sgpo.progress import RunProgressBar, quiet_known_noise


class Steps(pl.LightningModule):
    """Steps that log the bar's metrics the way SGPOModule does."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.rollout_step = 0  # what StepCheckpoint reads

    def training_step(self, batch, batch_idx):
        self.rollout_step += 1
        self.log_dict({"train/reward_mean": 0.52349, "curriculum/phase": 1.0, "compute/total_flops": 4967180533760.0},
                      on_step=True, prog_bar=True, batch_size=1)
        return self.layer(torch.ones(1, 2)).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return itertools.count()  # endless, like sgpo's step stream, and no DataLoader (it needs no workers)


def fit(run_dir, max_steps: int, ckpt_path=None) -> pl.Trainer:
    callbacks = [RunProgressBar(total_steps=max_steps), StepCheckpoint(run_dir / "checkpoints", every_n_steps=2)]
    trainer = pl.Trainer(accelerator="cpu", max_steps=max_steps, callbacks=callbacks,
                         logger=pl.loggers.CSVLogger(run_dir, name="csv", version=""), enable_checkpointing=False,
                         log_every_n_steps=1, default_root_dir=str(run_dir))
    trainer.fit(Steps(), ckpt_path=ckpt_path)
    return trainer


def test_fit_checkpoint_and_resume_print_no_framework_warnings(tmp_path, recwarn, caplog):
    quiet_known_noise()
    caplog.set_level(logging.INFO)
    first = fit(tmp_path / "first", max_steps=2)  # writes checkpoints/last.ckpt after step 2, mid-epoch
    resumed = fit(tmp_path / "resumed", max_steps=3, ckpt_path=tmp_path / "first" / "checkpoints" / "last.ckpt")

    assert [f"{w.filename}:{w.lineno}: {w.message}" for w in recwarn] == []
    printed = [r.getMessage() for r in caplog.records]
    assert not [m for m in printed if "weights_only" in m or "Tip:" in m], printed
    for trainer, steps in ((first, 2), (resumed, 3)):
        bar = trainer.progress_bar_callback.train_progress_bar
        assert (bar.n, bar.total, bar.desc, bar.unit) == (steps, steps, "steps: ", "step")
        assert bar.postfix == "reward=0.523, phase=1, FLOPs=4.97e12"
