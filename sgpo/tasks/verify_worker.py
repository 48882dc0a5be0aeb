"""Verifier checks in a worker process, under a wall-clock deadline the check cannot cancel.

A check that parses model text with a large library (math-verify, sympy, reasoning-gym
scorers) can take unbounded time, and in-process limits do not hold: math-verify's own
``signal.alarm`` cancels any alarm armed around it, signals only reach the main thread (Lightning
and vLLM may score from others), and a long computation inside C is not interrupted by a signal
at all. So those checks run in another process, and a process that never runs them keeps time.

Two processes per worker:
  - the *template* (started with ``subprocess``) imports the libraries and runs the setups
    (math-verify, a task's datasets), then forks a *runner*, which inherits all of that;
  - the runner runs checks, one at a time. The template relays each request to it and waits
    for the reply until the deadline; past it, it kills the runner, forks a fresh one
    (milliseconds: nothing to import) and answers "timeout". Nothing the check does can stop
    that: the template runs no untrusted code and uses no signals.
The calling process waits for the template, with a backstop (``BACKSTOP_S`` past the deadline)
after which it kills the template too and starts another (seconds: it imports again).

Protocol: length-prefixed pickles over pipes (all ends are this module; model text is a string
inside them). A request names a function by ``"module:name"``: ``setup`` requests run in the
template, once, under ``STARTUP_TIMEOUT_S``, and are replayed if the template is replaced;
``call`` requests run in the runner inside ``eval_guard.checking()``, with eval/exec refused
(``eval_guard.install(refuse=True)``). Each reply carries the guard's findings, which land in
the calling process's ``eval_guard`` record.

Cost: ~0.1 ms a round trip plus pickling the arguments, so cheap exact-match checks stay in
the calling process; only the expensive paths come here. POSIX only (fork, pipes, selectors).
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import pickle
import resource
import select
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sgpo.tasks import eval_guard

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 120.0  # a template imports sympy / math-verify / reasoning-gym: seconds on a busy machine
BACKSTOP_S = 5.0  # how long past a deadline the caller waits for the template before replacing it
MAX_FINDINGS = 20  # per reply: keeps every reply within one atomic pipe write
MAX_CHECK_MEMORY = 2 << 30  # bytes one check may add to a runner (Linux)
_HEADER = struct.Struct(">I")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])

Setup = tuple[str, tuple]  # ("module:function", args), run once per template


class CheckTimeout(Exception):
    """A check ran past its deadline; the runner running it was killed."""


class CheckFailed(Exception):
    """The check raised, or its runner died: a wrong answer, not a crash of the run."""


class WorkerError(RuntimeError):
    """The worker could not start or run a setup: a broken install or configuration."""


class _Timeout(Exception):
    pass


class _Died(Exception):
    pass


class Worker:
    """A template process and its runner, serving one check at a time (thread-safe; fork-aware)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats: Counter = Counter()  # "calls", "timeouts", "failures", "restarts" (of the template)
        self._setups: list[Setup] = []
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._selector: selectors.BaseSelector | None = None
        self._owner = os.getpid()
        self._pending = 0  # setup replies not read yet

    def call(self, func: str, args: tuple, timeout_s: float, setup: Setup | None = None) -> Any:
        """``func(*args)`` in the runner, after ``setup`` (see ``add_setup``) if given.

        Raises CheckTimeout past ``timeout_s`` (counted from the request; waiting for a fresh
        template's setups is not), CheckFailed if the check raised or its runner died.
        """
        with self._lock:
            if setup is not None:
                self._add_setup(setup)
            self._ready()
            self.stats["calls"] += 1
            self._send(("call", func, args, timeout_s))
            try:
                status, value, findings = self._receive(time.monotonic() + timeout_s + BACKSTOP_S)
            except _Timeout:  # the template itself is stuck: replace it (the backstop)
                self.stats["timeouts"] += 1
                self._restart()
                raise CheckTimeout(f"{func}: verify worker {self.name!r} did not answer; replaced") from None
            except _Died:
                self.stats["failures"] += 1
                self._restart()
                raise CheckFailed(f"verify worker {self.name!r} exited during {func}; replaced") from None
            _merge(findings, func)
            if status == "ok":
                return value
            if status == "timeout":
                self.stats["timeouts"] += 1
                raise CheckTimeout(f"{func} ran past {timeout_s:g} s; its runner was killed")
            self.stats["failures"] += 1
            raise CheckFailed(value)

    def add_setup(self, setup: Setup) -> None:
        """Run ``setup`` (``("module:function", args)``) in this worker once, and again in any replacement."""
        with self._lock:
            self._add_setup(setup)

    def start(self, wait: bool = False) -> None:
        """Start the worker and its setups now: in the background, or waiting until they are done."""
        with self._lock:
            if not self._alive():
                self._stop()
                self._spawn()
            if wait:
                self._ready()

    def close(self) -> None:
        with self._lock:
            self._stop()

    # -- internals (called with the lock held) -------------------------------------------

    def _add_setup(self, setup: Setup) -> None:
        if setup in self._setups:
            return
        self._setups.append(setup)
        if self._alive():
            self._send(("setup", *setup))
            self._pending += 1

    def _alive(self) -> bool:
        if self._owner != os.getpid():  # forked: the processes belong to the parent, leave them alone
            self._proc, self._selector, self._pending, self._owner = None, None, 0, os.getpid()
        return self._proc is not None and self._proc.poll() is None

    def _ready(self) -> None:
        """A live template with every setup done; a failed setup raises WorkerError."""
        if not self._alive():
            self._stop()
            self._spawn()
        while self._pending:
            try:
                status, value, findings = self._receive(time.monotonic() + STARTUP_TIMEOUT_S)
            except (_Timeout, _Died) as err:
                code = self._exit_code()
                self._stop()
                raise WorkerError(f"verify worker {self.name!r} did not start (exit code {code}, "
                                  f"{type(err).__name__.strip('_').lower()}); its stderr is above") from None
            self._pending -= 1
            _merge(findings, "setup")
            if status != "ok":
                failed = self._setups.pop(len(self._setups) - self._pending - 1)
                raise WorkerError(f"verify worker {self.name!r}: setup {failed[0]} failed: {value}")

    def _spawn(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = "1"  # one check at a time; and a template with no threads forks safely
        # A session of its own: Ctrl-C stops the caller, not the template, and the template and its
        # runner go together (killpg in _stop).
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from sgpo.tasks.verify_worker import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True, start_new_session=True)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._proc.stdout, selectors.EVENT_READ)
        self._pending = 0
        for setup in self._setups:
            self._send(("setup", *setup))
            self._pending += 1

    def _exit_code(self) -> int | None:
        """The template's exit code once its output has closed (None if it is still running)."""
        try:
            return self._proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return None

    def _restart(self) -> None:
        self.stats["restarts"] += 1
        self._stop()
        self._spawn()

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        self._pending = 0
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the template and its runner, which may be mid-check
        except ProcessLookupError:
            pass
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass  # a broken pipe to a killed process

    def _send(self, message: tuple) -> None:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._proc.stdin.write(_HEADER.pack(len(payload)) + payload)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the template is gone: the read that follows reports it

    def _receive(self, deadline: float) -> tuple:
        fd = self._proc.stdout.fileno()

        def wait(remaining: float) -> bool:
            return bool(self._selector.select(remaining))

        return _read_message(fd, deadline, wait)


def _merge(findings: list[str], func: str) -> None:
    """The worker's eval_guard findings go to this process's record, and to the log."""
    for finding in findings:
        eval_guard.record(f"[verify worker, {func}] {finding}")
    if findings:
        log.warning("verifier %s tried to evaluate code during a check (refused, scored 0): %s", func, findings[0])


_WORKERS: dict[str, Worker] = {}
_WORKERS_LOCK = threading.Lock()


def worker(name: str) -> Worker:
    """This process's worker called ``name`` (tasks of one kind share one)."""
    with _WORKERS_LOCK:
        if name not in _WORKERS:
            _WORKERS[name] = Worker(name)
        return _WORKERS[name]


def _forget_workers() -> None:
    """In a forked child: no workers (the parent's belong to the parent), and a lock nobody holds."""
    global _WORKERS_LOCK
    _WORKERS.clear()
    _WORKERS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_workers)


@atexit.register
def close_all() -> None:
    """Stop every worker of this process."""
    for w in list(_WORKERS.values()):
        if w._owner == os.getpid():
            w.close()


# -- shared by all three processes ----------------------------------------------------------


def _read_message(fd: int, deadline: float | None = None, wait=None) -> tuple:
    """One framed message from ``fd``; raises _Timeout past ``deadline``, _Died at end of file."""
    def exact(n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not wait(remaining):
                    raise _Timeout
            chunk = os.read(fd, n - len(data))
            if not chunk:
                raise _Died
            data += chunk
        return bytes(data)

    return pickle.loads(exact(_HEADER.unpack(exact(_HEADER.size))[0]))


def _write_message(fd: int, message: tuple) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out = memoryview(_HEADER.pack(len(payload)) + payload)
    while out:
        out = out[os.write(fd, out):]


def _resolve(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


# -- the template ---------------------------------------------------------------------------


def serve() -> None:
    """The template's loop: setups here, checks relayed to a runner under their deadline."""
    replies = os.dup(1)
    os.dup2(2, 1)  # a library's print goes to stderr, never into a reply stream
    eval_guard.install(refuse=True)  # inherited by every runner
    runner: _Runner | None = None
    while True:
        try:
            message = _read_message(0)
        except _Died:  # the caller is gone
            if runner is not None:
                runner.kill()
            return
        if message[0] == "setup":
            _, func, args = message
            try:
                _resolve(func)(*args)
                eval_guard.guard_sympy_parser()  # the setup may have imported code that holds parse_expr
                reply = ("ok", None, [])
            except Exception as err:  # noqa: BLE001 - reported to the caller as a setup error
                reply = ("error", f"{type(err).__name__}: {str(err)[:300]}", [])
            if runner is not None:  # forked before this setup: replace it on the next call
                runner.kill()
                runner = None
        else:
            _, func, args, timeout_s = message
            runner = runner or _Runner(replies)
            reply = runner.run(func, args, timeout_s)
        try:
            _write_message(replies, reply)
        except BrokenPipeError:  # the caller is gone
            if runner is not None:
                runner.kill()
            return
        if reply[0] in ("timeout", "died"):
            runner = _Runner(replies)  # fork the next one now, while the caller goes on


class _Runner:
    """A forked child of the template that runs checks; the template keeps its deadline."""

    def __init__(self, template_replies: int) -> None:
        request_r, self._requests = os.pipe()
        self._replies, reply_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the runner: never returns
            for fd in (self._requests, self._replies, template_replies):
                os.close(fd)  # the template's ends: only it may see or close them
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)  # the template's requests are not the runner's to read
            _limit_memory()
            _run_checks(request_r, reply_w)
        os.close(request_r)
        os.close(reply_w)

    def run(self, func: str, args: tuple, timeout_s: float) -> tuple:
        try:
            _write_message(self._requests, ("call", func, args))
            return _read_message(self._replies, time.monotonic() + timeout_s, self._readable)
        except _Timeout:
            self.kill()
            return ("timeout", None, [])
        except (_Died, BrokenPipeError):
            code = self.kill()
            return ("died", f"the runner died during {func} (exit status {code})", [])

    def _readable(self, remaining: float) -> bool:
        return bool(select.select([self._replies], [], [], remaining)[0])

    def kill(self) -> int:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(self.pid, 0)
        os.close(self._requests)
        os.close(self._replies)
        return os.waitstatus_to_exitcode(status)


def _limit_memory() -> None:
    """Linux: the runner's address space may grow by ``MAX_CHECK_MEMORY`` at most, so a check
    that builds a huge number fails with MemoryError instead of swapping the machine before its
    deadline. Elsewhere (no /proc): no limit."""
    try:
        with open("/proc/self/statm") as statm:
            size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + MAX_CHECK_MEMORY
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))


def _run_checks(requests: int, replies: int) -> None:
    """The runner's loop: each request under ``eval_guard.checking()``; exits with the template."""
    while True:
        try:
            _, func, args = _read_message(requests)
        except _Died:
            os._exit(0)
        try:
            with eval_guard.checking():
                reply = ("ok", _resolve(func)(*args))
        except Exception as err:  # noqa: BLE001 - a failing check is reported, the runner lives on
            reply = ("error", f"{type(err).__name__}: {str(err)[:300]}")
        _write_message(replies, (*reply, eval_guard.take()[:MAX_FINDINGS]))
