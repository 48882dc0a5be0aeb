"""A Lightning fit wired as sgpo.training wires it (log_every_n_steps=1, the progress bar,
sgpo.callbacks.save_checkpoint) prints no warnings of its own making, and its bar is readable."""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch

from sgpo.callbacks import save_checkpoint
from sgpo.progress import RunProgressBar, quiet_known_noise


class Steps(pl.LightningModule):
    """Two steps that log the bar's metrics the way SGPOModule does."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        self.log_dict({"train/reward_mean": 0.52349, "curriculum/phase": 1.0, "compute/total_flops": 4967180533760.0},
                      on_step=True, prog_bar=True, batch_size=1)
        return self.layer(torch.ones(1, 2)).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return range(2)  # a plain iterable of step numbers, as the step stream needs no DataLoader workers


def test_fit_and_checkpoint_print_no_framework_warnings(tmp_path, recwarn, caplog):
    quiet_known_noise()
    caplog.set_level(logging.INFO)
    trainer = pl.Trainer(accelerator="cpu", max_steps=2, logger=pl.loggers.CSVLogger(tmp_path, name="csv", version=""),
                         callbacks=[RunProgressBar(total_steps=2)], enable_checkpointing=False,
                         log_every_n_steps=1, default_root_dir=str(tmp_path))
    trainer.fit(Steps())
    save_checkpoint(trainer, tmp_path / "last.ckpt")

    assert [f"{w.filename}:{w.lineno}: {w.message}" for w in recwarn] == []
    printed = [r.getMessage() for r in caplog.records]
    assert not [m for m in printed if "weights_only" in m or "Tip:" in m], printed
    bar = trainer.progress_bar_callback.train_progress_bar
    assert (bar.n, bar.total, bar.desc) == (2, 2, "steps: ")
    assert bar.postfix == "reward=0.523, phase=1, FLOPs=4.97e12"
