"""The profiling pass and its difficulty cache (see runner.py and store.py)."""

from sgpo.profiling.store import CacheError, DifficultyProfile, load_profile

__all__ = ["CacheError", "DifficultyProfile", "load_profile", "run"]


def run(cfg):
    """``python profile.py`` -> ``sgpo.profiling.runner.run`` (imported lazily: torch is slow to load).

    The config is checked first (sgpo.config.load_profile_config): a bad key raises ConfigError
    before torch is imported or any work starts.
    """
    from sgpo.config import load_profile_config

    load_profile_config(cfg)
    from sgpo.profiling.runner import run as _run

    return _run(cfg)
