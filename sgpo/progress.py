"""The console of a training run: a readable progress bar, and two known third-party messages muted.

The module logs ``train/reward_mean``, ``curriculum/phase`` and ``compute/total_flops`` with
``prog_bar=True``; Lightning's default bar (Rich's when ``rich`` is installed, else tqdm's) prints
them under their full, cut names with fixed decimals (``compute/total_fl… 4967180533760.000``),
next to the logger's ``v_num``. Here they read ``reward=0.523 phase=1 FLOPs=4.97e12``.

``quiet_known_noise()`` mutes exactly two messages that no sgpo call can avoid (see there); every
other warning, Lightning's and everyone else's, still prints.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from numbers import Number

from pytorch_lightning.callbacks import TQDMProgressBar

# Logged key -> (name on the bar, format). Order is the order on the bar.
SHOWN: dict[str, tuple[str, str]] = {
    "train/reward_mean": ("reward", "{:.3f}"),
    "curriculum/phase": ("phase", "{:.0f}"),
    "compute/total_flops": ("FLOPs", "{:.2e}"),
}


def _compact(text: str) -> str:
    """``4.97e+12`` -> ``4.97e12``, ``1.50e-03`` -> ``1.50e-3``."""
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    sign = "-" if exponent.startswith("-") else ""
    return f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"


def format_postfix(metrics: Mapping[str, object]) -> dict[str, str]:
    """The bar's postfix from the logged progress-bar metrics: short names, formatted values.

    Keys in ``SHOWN`` come first under their short names; any other numeric metric keeps the last
    part of its name with 4 significant digits. Lightning's logger version (``v_num``) is not shown.
    """
    out: dict[str, str] = {}
    for key, (name, fmt) in SHOWN.items():
        if isinstance(metrics.get(key), Number):
            out[name] = _compact(fmt.format(float(metrics[key])))
    for key, value in metrics.items():
        if key not in SHOWN and isinstance(value, Number):
            out[key.rsplit("/", 1)[-1]] = _compact(f"{float(value):.4g}")
    return out


class RunProgressBar(TQDMProgressBar):
    """One bar over the rollout steps (out of ``total_steps`` when known), with ``format_postfix``'s numbers.

    The step stream never ends by itself (the stop rules end it), so Lightning cannot know the total.
    """

    def __init__(self, total_steps: int | None = None) -> None:
        super().__init__()
        self.total_steps = total_steps

    def get_metrics(self, trainer, pl_module) -> dict[str, str]:
        return format_postfix(trainer.progress_bar_metrics)  # not super()'s: that adds v_num

    def init_train_tqdm(self):
        return self._label(super().init_train_tqdm())  # a resumed run gets no on_train_epoch_start

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)  # resets the total and says "Epoch 0"
        self._label(self.train_progress_bar)

    def _label(self, bar):
        bar.unit = "step"
        bar.set_description("steps", refresh=False)  # not "Epoch 0": a run is one pass of rollout steps
        if self.total_steps:
            bar.total = self.total_steps
        return bar


class _DropTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡 Tip:")


_TIP = _DropTip()


def quiet_known_noise() -> None:
    """Mute two third-party messages that every run prints and nothing in sgpo's calls can avoid.

    - Lightning (2.6.6 here) builds torch's deprecated ``LeafSpec`` whenever it wraps a train loader
      (``pytorch_lightning/utilities/_pytree.py``, used by ``CombinedLoader`` in every fit), and torch
      (2.13 here) warns ``isinstance(treespec, LeafSpec) is deprecated``: any loader triggers it.
    - Lightning logs an advertisement for its LitLogger service (``💡 Tip: ... litlogger``) unless a
      LitLogger is among the loggers: no Trainer argument turns it off.

    Only these exact messages are muted (by message, category and emitting module or logger).
    Safe to call more than once.
    """
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning, module=r"pytorch_lightning\.utilities\._pytree")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_TIP)
