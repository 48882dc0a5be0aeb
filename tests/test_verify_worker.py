"""The verify worker: a deadline that needs no cooperation from the check, recovery from a killed or
dead worker, eval/exec refused and reported, clear set-up errors, and the cost of a round trip."""

from __future__ import annotations

import statistics
import sys
import threading
import time

import pytest

from sgpo.tasks import eval_guard
from sgpo.tasks.verify_worker import MAX_CHECK_MEMORY, CheckFailed, CheckTimeout, Worker, WorkerError

MARGIN_S = 0.75


@pytest.fixture
def w():
    worker = Worker("test")
    worker.start(wait=True)
    yield worker
    worker.close()


def test_deadline_needs_no_cooperation_and_holds_off_the_main_thread(w):
    outcome = []

    def run():
        try:
            w.call("time:sleep", (60,), 0.5)
        except CheckTimeout as err:
            outcome.append(err)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(0.5 + MARGIN_S)
    assert not thread.is_alive() and outcome, f"no CheckTimeout after {time.monotonic() - started:.1f} s"
    assert w.stats["timeouts"] == 1 and w.stats["restarts"] == 0  # only the runner was replaced
    assert w.call("builtins:abs", (-3,), 5.0) == 3  # the replacement serves the next check


def test_a_dead_worker_is_a_failed_check_and_is_replaced(w):
    with pytest.raises(CheckFailed, match=r"runner died during os:_exit \(exit status 3\)"):
        w.call("os:_exit", (3,), 5.0)
    assert w.call("builtins:abs", (-3,), 5.0) == 3


def test_an_error_in_the_check_is_a_failed_check(w):
    with pytest.raises(CheckFailed, match="ValueError"):
        w.call("builtins:int", ("not a number",), 5.0)
    assert w.stats["restarts"] == 0  # the worker lives on


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the memory limit needs Linux")
def test_a_check_that_allocates_too_much_fails_and_the_runner_lives_on(w):
    with pytest.raises(CheckFailed, match="MemoryError"):
        w.call("builtins:bytearray", (MAX_CHECK_MEMORY + (1 << 30),), 10.0)
    assert w.call("builtins:len", (bytes(1 << 20),), 5.0) == 1 << 20


def test_eval_and_exec_in_the_worker_are_refused_and_reported(w):
    eval_guard.take()
    for func in ("builtins:eval", "builtins:exec"):
        with pytest.raises(CheckFailed, match="EvaluationRefused"):
            w.call(func, ("__import__('os').getpid()",), 5.0)
    found = eval_guard.take()
    assert len(found) == 2 and all("__import__('os').getpid()" in f for f in found), found


def test_setup_errors_name_the_setup_and_the_worker_goes_on(w):
    with pytest.raises(WorkerError, match="setup sgpo.no_such_module:load failed: ModuleNotFoundError"):
        w.call("builtins:abs", (-1,), 5.0, setup=("sgpo.no_such_module:load", ()))
    assert w.call("builtins:abs", (-1,), 5.0) == 1


def test_round_trip_overhead(w):
    times = []
    for _ in range(200):
        started = time.perf_counter()
        w.call("builtins:abs", (-1,), 5.0)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(f"verify worker round trip: median {median * 1e6:.0f} us")
    assert median < 0.02
