"""Verifiers against hostile model output: no eval/exec, a time limit that holds, right answers rewarded.

Every check runs watched by ``sgpo.tasks.eval_guard``: any eval/exec, or sympy ``parse_expr``
(what ``sympify`` of text runs), during a check is recorded, in this process and inside the
verify worker, and the ``guard`` fixture fails the test afterwards. Nothing is raised into the
code under test, so a library's ``except Exception`` cannot hide a finding, and tests that check
right answers under the guard prove the real math-verify path ran. Each check is timed.

Verifiers: the integer verifier (arithmetic and jsonl ``integer``), jsonl ``exact``, the math
verifier (gsm8k/math tasks: fast path and math-verify in the worker) and reasoning-gym scorers.
"""

from __future__ import annotations

import threading
import time

import pytest
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from verifier_guard import check, guard  # noqa: F401 - guard: an autouse fixture

from sgpo.tasks import build_task, eval_guard
from sgpo.tasks.answers import extract_first_integer, integers_match
from sgpo.tasks.base import Query
from sgpo.tasks.math_answers import STATS, answer_candidate, math_match, start_worker
from sgpo.tasks.verify_worker import CheckFailed, worker

TIMEOUT_S = 1.0  # the math / reasoning-gym checks' deadline in these tests
MARGIN_S = 0.75  # scheduling slack on a busy 2-core CI machine; a kill itself takes milliseconds
FAST_S = 0.25  # in-process verifiers (integer, exact): bounded input, no parser

NASTY = [
    "x" * 1_000_000,                                   # 1 MB
    "1" * 1_000_000,                                   # a million-digit integer
    "10**10**10", "\\boxed{10**10**10}",               # power towers (Python and LaTeX)
    "9^9^9^9", "\\boxed{9^9^9^9}", "\\boxed{9^{9^{9^{9}}}}",
    "{" * 100_000, "\\boxed{" + "{" * 50_000,           # deeply nested / unbalanced braces
    "\\boxed{" + "\\frac{1}{" * 200 + "2" + "}" * 201,  # nested \frac
    "\\frac" * 10_000,
    "\x00" * 1000 + "42", "4\x002",                    # NUL bytes
    "٤٢", "４２", "𝟒𝟐",                                # unicode digits (Arabic-Indic, fullwidth, math bold)
    "\u200f42\u200e", "\u202e24\u202c",                # right-to-left / override marks
    "\udcff",                                          # a lone surrogate
    "__import__('os').system('echo pwned')",           # code
    "\\boxed{__import__('os').system('echo pwned')}",
    "", " ", "\n" * 10_000, "-", "+", "--5", "1e999999", "\\boxed{1e999999}", "\\boxed{}", "\\boxed",
    "\\boxed{\\infty}", "\\boxed{nan}", "\\boxed{0/0}", "\\boxed{1/0}",
    "\\begin{matrix}" * 1000,
]
# Aimed at slowness: towers of exponents, huge factorials/binomials/exponents, 10,000-term sums,
# 50,000 nested parentheses (whole, and cut to what fits in a boxed answer).
SLOW = [
    "\\boxed{9^{9^{9}}}", "\\boxed{10^{10^{10}}}", "\\boxed{2^{2^{2^{2^{2^{2}}}}}}", "\\boxed{9^{387420489}}",
    "\\boxed{99999999!}", "\\boxed{\\binom{99999999}{49999999}}", "\\boxed{10.45E2448290}", "\\boxed{1e99999999}",
    "\\boxed{" + "+".join(["1"] * 10_000) + "}", "+".join(["1"] * 10_000), "+".join(f"x^{{{i}}}" for i in range(10_000)),
    "\\boxed{" + "+".join(f"x^{{{i}}}" for i in range(40)) + "}",
    "\\boxed{" + "(" * 50_000 + "1" + ")" * 50_000 + "}", "(" * 50_000 + "1" + ")" * 50_000,
    "\\boxed{" + "(" * 140 + "1" + ")" * 140 + "}", "\\boxed{" + "\\sqrt{" * 40 + "2" + "}" * 40 + "}",
    "\\boxed{" + "{" * 140 + "x" + "}" * 140 + "}", "\\boxed{x^{" * 30 + "2" + "}}" * 30,
]
HOSTILE = NASTY + SLOW
IDS = [f"nasty{i}" for i in range(len(NASTY))] + [f"slow{i}" for i in range(len(SLOW))]
MATH_TASK = {"type": "hf_dataset", "name": "math", "answer_format": "boxed", "prompt_field": "problem",
             "answer_field": "solution", "val_per_mille": 0, "verify_timeout_s": TIMEOUT_S,
             "sources": {"train": {"path": "parquet", "data_files": str(REPO / "tests/fixtures/math/train.parquet"),
                                   "split": "train"}}}


def math_check(completion: str, answer: str) -> tuple[bool, float]:
    start_worker(wait=True)  # the first check would wait for the worker to import math-verify: not timed here
    return check(math_match, completion, answer, TIMEOUT_S)


@pytest.fixture(scope="module")
def math_task():
    return build_task(MATH_TASK)


@pytest.mark.parametrize("completion", HOSTILE, ids=IDS)
def test_integer_verifiers_survive_hostile_completions(completion):
    arithmetic = build_task({"type": "arithmetic", "num_train": 1, "num_val": 0, "num_test": 0})
    query = Query(id="q", prompt="40+2=", answer="42")
    for verify in (lambda c: integers_match(c, "42"), lambda c: arithmetic.score(query, c)):
        result, seconds = check(verify, completion)
        assert result in (True, False, 0.0, 1.0) and seconds < FAST_S


@pytest.mark.parametrize("completion", HOSTILE, ids=IDS)
def test_jsonl_verifiers_survive_hostile_completions(completion, tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"prompt": "40+2=", "answer": "42"}\n')
    for answer_type in ("integer", "exact"):
        task = build_task({"type": "jsonl", "train_path": str(path), "answer_type": answer_type})
        result, seconds = check(task.score, task.split("train")[0], completion)
        assert result in (0.0, 1.0) and seconds < FAST_S


@pytest.mark.parametrize("completion", HOSTILE, ids=IDS)
def test_math_verifier_survives_hostile_completions(completion, math_task):
    """Against a plain reference (the fast path, or the worker for LaTeX) and through the math task
    (reference \\frac{3}{4}: always the worker)."""
    query = math_task.split("train")[0]
    for verify, args in ((math_match, (completion, "42", TIMEOUT_S)), (math_task.score, (query, completion))):
        start_worker(wait=True)  # the first check would wait for the worker to import math-verify: not timed here
        result, seconds = check(verify, *args)
        assert result in (True, False, 0.0, 1.0) and seconds < TIMEOUT_S + MARGIN_S, (verify, seconds)


def test_deadline_holds_off_the_main_thread_and_the_run_goes_on():
    """A tower of exponents keeps math-verify busy far past the limit: the check, called from a
    thread, scores 0 within the limit plus a margin (nothing in math-verify can cancel the deadline)."""
    start_worker(wait=True)
    timeouts, result = STATS["timeouts"], []
    started = time.monotonic()
    thread = threading.Thread(target=lambda: result.append(check(math_match, "\\boxed{9^{9^{9}}}", "\\frac{1}{2}",
                                                                 TIMEOUT_S)[0]), daemon=True)
    thread.start()
    thread.join(TIMEOUT_S + MARGIN_S)
    assert not thread.is_alive(), f"the check was still running after {time.monotonic() - started:.1f} s"
    assert result == [False] and STATS["timeouts"] == timeouts + 1  # it really was slow, and was cut
    assert math_check("\\boxed{\\frac{2}{4}}", "0.5")[0]  # a fresh runner serves the next check


def test_right_answers_still_score_1_under_the_guard(math_task):
    """math-verify (in the worker) really runs here: fractions, expressions and sets, not just strings."""
    worker_checks = STATS["worker_checks"]
    for completion, answer in [("so the answer is \\boxed{\\frac{1}{2}}", "0.5"), ("\\boxed{x^2+2x+1}", "(x+1)^2"),
                               ("\\boxed{0.75}", "\\frac{3}{4}"), ("\\boxed{2 \\frac{1}{2}}", "2.5"),
                               ("\\boxed{\\{1,2\\}}", "\\{2,1\\}"), ("\\boxed{1,234}", "1234"),
                               ("\\boxed{\\frac{a^2-b^2}{a-b}+\\frac{c^3-d^3}{c-d}}", "a+b+c^2+cd+d^2"),  # sympy codegen
                               ("\\boxed{1" + "0" * 80 + "}", "1" + "0" * 80), ("The total is 1,234 apples.", "1234")]:
        assert math_check(completion, answer)[0], (completion, answer)
    assert not math_check("\\boxed{\\frac{1}{3}}", "0.5")[0] and not math_check("\\boxed{3}", "4")[0]
    assert STATS["worker_checks"] >= worker_checks + 5
    query = math_task.split("train")[0]
    assert check(math_task.score, query, "so \\boxed{\\frac{6}{8}}")[0] == 1.0


def test_the_guard_sees_eval_exec_and_sympify():
    """The guard can fail: eval/exec/sympify in a check here, and eval inside the worker, are recorded."""
    import sympy

    eval_guard.install()  # again: sympy's parser may have been loaded since, and its references get guarded
    with eval_guard.checking():
        eval("1 + 1")
        exec("x = 1")
        sympy.sympify("2 + 3")
    eval("1 + 1")  # outside a check: not a finding
    found = eval_guard.take()
    assert len(found) >= 3 and any("parse_expr('2 + 3')" in f for f in found), found
    start_worker(wait=True)
    with pytest.raises(CheckFailed, match="EvaluationRefused"):
        worker("math").call("builtins:eval", ("1 + 1",), TIMEOUT_S)
    assert any("verify worker" in f and "eval/exec of '1 + 1'" in f for f in eval_guard.take())


def test_nasty_cases_score_as_expected():
    assert not integers_match("10**10**10", "10000000000")  # the first integer is 10: no evaluation
    assert integers_match("\x00" * 1000 + "42", "42")
    assert not integers_match("٤٢", "42") and not math_match("٤٢", "42")  # only ASCII digits are answers
    assert math_match("\u200f42\u200e", "42")  # invisible marks are removed before checking
    assert not math_match("\\boxed{9^9^9^9}", "42") and not math_match("\\boxed{1e999999}", "42")
    assert answer_candidate("{" * 100_000) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=5000))
def test_integer_verifier_on_any_text(text):
    got = extract_first_integer(text)
    assert got is None or got.lstrip("-").isdigit()
    result, seconds = check(integers_match, text, "7")
    assert result in (True, False) and seconds < FAST_S


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(list("0123456789{}^\\/()+-*=., frcabox\x00\u200f٤")
                                + ["\\frac", "\\boxed{", "\\sqrt", "^{", "\\left(", "\\right)"]),
                max_size=200).map("".join))
def test_math_verifier_on_latex_like_text(text):
    result, seconds = math_check(text, "12")
    assert result in (True, False) and seconds < TIMEOUT_S + MARGIN_S


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-10**30, max_value=10**30), st.text(alphabet=" abc=\n", max_size=20))
def test_right_integer_always_matches(n, prefix):
    assert integers_match(f"{prefix}{n}", str(n))
    assert math_match(f"{prefix}\\boxed{{{n}}}", str(n))
