"""The eval/exec guard for verifier tests: a fixture that fails a test afterwards if any of its
checks evaluated code, and ``check()`` to run and time one watched check.

``sgpo.tasks.eval_guard`` records every eval/exec (and sympy ``parse_expr``, which is what
``sympify`` of text runs) made during a check, here and inside the verify worker, whose findings
come back with each reply. Nothing is raised into the code under test: a library's
``except Exception`` cannot hide a finding.
"""

from __future__ import annotations

import time

import pytest

from sgpo.tasks import eval_guard


@pytest.fixture(autouse=True)
def guard():
    """Watch the test's checks; a finding fails the test once it is done."""
    eval_guard.install()  # record only: the code under test behaves as in production
    eval_guard.take()
    yield
    found = eval_guard.take()
    assert not found, "a verifier evaluated code during a check:\n" + "\n".join(found[:10])


def check(fn, *args):
    """``fn(*args)`` as one watched check: (result, seconds)."""
    started = time.monotonic()
    with eval_guard.checking():
        result = fn(*args)
    return result, time.monotonic() - started
