"""Deterministic crash points for fault-injection tests.

``SGPO_CRASH_AT=<point>`` makes the process SIGKILL itself the moment it reaches that point, so a
test can kill a run exactly between two writes (e.g. after a Parquet file, before its meta.json)
instead of hoping a timer lands there. Unset (always, outside tests), ``crash_point`` does nothing.

Points: ``profile:chunk:<i>`` (chunk i written), ``profile:before_meta`` (profile.parquet written,
meta.json not yet), ``profile:before_cleanup`` (meta.json written, part files not yet removed),
``train:checkpoint:<step>`` (checkpoint of that step written).
"""

from __future__ import annotations

import os
import signal

ENV = "SGPO_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
