"""Shared helpers: the repo root, the shipped policy, and running the real CLIs in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "sgpo" / "assets" / "tiny_arith"

# Never wait on the hub in tests: everything they load is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The suite runs in two pytest-xdist workers (README): each worker, and every process it starts,
    # keeps torch on one thread, so two workers share two cores instead of spinning four threads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

if Path(sys.argv[0]).name == "mutmut":
    # `mutmut run` forks a worker per mutant from this process, and torch's OpenMP thread pool does
    # not survive a fork (the workers hang): mutation runs keep torch on one thread.
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def run_cli(*args: str, timeout: float = 600, check: bool = True, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the repo root; on failure show its output."""
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ))
    if check and proc.returncode != 0:
        raise AssertionError(f"python {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
                             f"\n--- stderr\n{proc.stderr[-6000:]}")
    return proc


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def tiny_policy():
    from sgpo.models import load_policy

    return load_policy(str(TINY))


def vllm_available() -> tuple[bool, str]:
    try:
        import vllm  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any import failure means "skip with the reason"
        return False, f"vllm cannot be imported: {type(err).__name__}: {err}"
    return True, ""
