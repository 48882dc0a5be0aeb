"""Share one profiling pass across the jobs of a Hydra multirun.

A sweep such as ``-m profile.num_samples=4,8,16`` would otherwise profile three times. Every job
instead draws the *largest* k of the sweep (the first job to get the profile lock does the work,
the others wait and reuse it) and keeps the first k outcomes it asked for, so a job's ledger
charges only the samples it uses (``DifficultyProfile.prefix``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

KEY = "profile.num_samples"


def sweep_values(overrides: list[str], key: str = KEY) -> list[str]:
    """The values a list of Hydra command-line overrides sweeps ``key`` over ([] if it does not).

    Parsed with Hydra's own override grammar, so ``k=4,8``, ``k=range(2,10,2)`` and
    ``k=choice(4,8)`` are all understood.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    values: list[str] = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.key_or_group != key:
            continue
        if override.is_sweep_override():
            values += [str(v) for v in override.sweep_string_iterator()]
        else:
            values.append(str(override.value()))
    return values


def multirun_dir() -> Path | None:
    """The multirun folder when this process runs a job of a Hydra multirun, else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
    except (ImportError, ValueError):  # not under Hydra (tests, plain Python)
        return None
    return Path(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else None


def sweep_max_num_samples() -> int | None:
    """The largest ``profile.num_samples`` of the running multirun, or None outside one.

    Read from the ``multirun.yaml`` the launcher writes into the sweep folder before starting
    jobs: a job's own config only holds its own value.
    """
    folder = multirun_dir()
    path = folder / "multirun.yaml" if folder is not None else None
    if path is None or not path.is_file():
        return None
    try:
        overrides = yaml.safe_load(path.read_text())["hydra"]["overrides"]["task"]
        values = [int(v) for v in sweep_values(list(overrides))]
    except Exception as err:  # a sweeper we cannot read (e.g. Optuna's own search space): no sharing
        log.warning("could not read the sweep's %s values from %s (%s); profiling this job's k only", KEY, path, err)
        return None
    return max(values) if values else None
