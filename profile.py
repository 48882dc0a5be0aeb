"""Profiling pass: python profile.py [task=...] [model=...] [engine=...] [profile.num_samples=k]

Samples k completions per train query under the initial policy, verifies them and writes a
difficulty cache under outputs/profiles/ (see sgpo/profiling/runner.py). The last line printed
is ``profile: <folder>``; a bad config value ends it at start with ``error: <key>=<value>: <what is
valid>`` and exit code 2.

This file sits at the repository root, where it shadows the standard library's ``profile``
module (which ``cProfile`` imports). Imported under that name, it therefore loads and re-exports
the standard library module, so ``python -m cProfile train.py`` still works from here.
"""

if __name__ == "__main__":
    import sys

    import hydra

    import sgpo  # noqa: F401 - registers the ${sgpo_root:} resolver before Hydra composes the config
    from sgpo.config import ConfigError

    @hydra.main(version_base="1.3", config_path="conf", config_name="profile")
    def main(cfg) -> None:
        from sgpo.profiling import run

        try:
            run(cfg)
        except ConfigError as err:  # a bad config value: its key and what is valid, no traceback
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    main()
elif __name__ == "profile":
    import importlib.util as _util
    import sysconfig as _sysconfig
    from pathlib import Path as _Path

    _spec = _util.spec_from_file_location("profile", _Path(_sysconfig.get_paths()["stdlib"]) / "profile.py")
    _stdlib_profile = _util.module_from_spec(_spec)
    _spec.loader.exec_module(_stdlib_profile)
    globals().update({k: v for k, v in vars(_stdlib_profile).items() if not k.startswith("__")})
    __all__ = _stdlib_profile.__all__
