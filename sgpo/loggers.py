"""Metric sinks of a run, built from the ``logger`` config's entries (each a ``_target_``).

``conf/logger/<option>.yaml`` holds one entry per sink (csv always; tensorboard, wandb on
top); ``build_loggers`` instantiates every entry with the run folder as ``save_dir``. wandb
runs offline unless you are logged in, one group per multirun, tagged with what sweeps vary.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sgpo.profiling.sweep import multirun_dir


def build_loggers(logger_cfg: DictConfig | None, run_dir: Path) -> list:
    """Instantiate every entry of ``logger_cfg`` (name -> ``_target_`` node) with ``save_dir=run_dir``."""
    from hydra.utils import instantiate

    loggers = []
    for name, node in (logger_cfg or {}).items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ValueError(f"logger.{name} must be a node with a _target_ (a Lightning logger class or factory); "
                             f"got {OmegaConf.to_yaml(node) if isinstance(node, DictConfig) else node!r}")
        loggers.append(instantiate(node, save_dir=str(run_dir)))
    return loggers


def wandb_logger(save_dir: str, project: str, group: str | None, tags: list[str], offline: bool | None,
                 method: str, num_samples: int, profiled: bool, allocation: str, output_dir: str):
    """A Lightning ``WandbLogger``: offline unless logged in (``offline`` null), the multirun's folder
    as its group, tags ``method:``, ``k:``, ``allocation:`` plus ``tags``; every metric plotted
    against ``compute/total_flops``."""
    from pytorch_lightning.loggers import WandbLogger

    offline = offline if offline is not None else not wandb_logged_in()
    group = group if group is not None else sweep_group(Path(output_dir))
    tags = [f"method:{method}", f"k:{num_samples if profiled else 'none'}", f"allocation:{allocation}", *list(tags or [])]
    logger = WandbLogger(project=project, group=group[-128:] if group else None, tags=[t[:64] for t in tags],
                         save_dir=save_dir, offline=offline)
    logger.experiment.define_metric("compute/total_flops")
    for prefix in ("train", "test", "val", "actor", "curriculum"):
        logger.experiment.define_metric(f"{prefix}/*", step_metric="compute/total_flops")
    return logger


def sweep_group(output_dir: Path) -> str | None:
    """The multirun's folder relative to ``output_dir`` (one wandb group per sweep); None outside a multirun."""
    sweep = multirun_dir()
    if sweep is None:
        return None
    root, sweep = output_dir.resolve(), sweep.resolve()
    return str(sweep.relative_to(root)) if sweep.is_relative_to(root) else sweep.name


def wandb_logged_in() -> bool:
    if os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        return False
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path.home() / ".netrc"
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def log_data_summary(loggers: list, p_hat: list[float] | None, num_samples: int, summary: dict[str, Any]) -> None:
    """At the start, to wandb: the p-hat histogram and the group-size mix (a histogram and a table)."""
    for logger in loggers:
        run = getattr(logger, "experiment", None)
        if not hasattr(run, "summary"):
            continue
        import wandb

        payload: dict[str, Any] = {}
        if p_hat:
            payload["data/p_hat"] = wandb.Histogram(p_hat, num_bins=num_samples + 1)
        mix = summary.get("data/group_size_mix", {})
        payload["data/group_size_mix"] = wandb.Table(
            columns=["group_size", "queries", "rollouts_per_epoch"],
            data=[[int(g), int(n), int(g) * int(n)] for g, n in sorted(mix.items())])
        run.log(payload, commit=True)
