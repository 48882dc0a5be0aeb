"""Verifiers against hostile model output: never eval, never crash, always answer within a time limit.

A fixed list of nasty completions plus property-based tests (hypothesis) over arbitrary text,
for the integer verifier (arithmetic, jsonl) and the math verifier (boxed / final number,
math-verify under a time limit).
"""

from __future__ import annotations

import builtins
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgpo.tasks.answers import extract_first_integer, integers_match
from sgpo.tasks.math_answers import STATS, answer_candidate, math_match

LIMIT_S = 3.0  # one check, whatever the text: math-verify's own limits are 2 s

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


@pytest.fixture
def no_eval(monkeypatch):
    """Any call of eval/exec during a check fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a verifier called eval/exec")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)


@pytest.mark.parametrize("completion", NASTY, ids=[f"nasty{i}" for i in range(len(NASTY))])
def test_integer_verifier_survives_nasty_completions(completion, no_eval):
    started = time.monotonic()
    assert integers_match(completion, "42") in (True, False)
    assert time.monotonic() - started < LIMIT_S


@pytest.mark.parametrize("completion", NASTY, ids=[f"nasty{i}" for i in range(len(NASTY))])
def test_math_verifier_survives_nasty_completions(completion, no_eval):
    started = time.monotonic()
    assert math_match(completion, "42") in (True, False)
    assert math_match(completion, "\\frac{1}{2}") in (True, False)
    assert time.monotonic() - started < 2 * LIMIT_S


def test_nasty_cases_score_as_expected():
    assert not integers_match("10**10**10", "10000000000")  # the first integer is 10: no evaluation
    assert integers_match("\x00" * 1000 + "42", "42")
    assert not integers_match("٤٢", "42") and not math_match("٤٢", "42")  # only ASCII digits are answers
    assert math_match("\u200f42\u200e", "42")  # invisible marks are removed before checking
    assert not math_match("\\boxed{9^9^9^9}", "42") and not math_match("\\boxed{1e999999}", "42")
    assert answer_candidate("{" * 100_000) is None


def test_math_verifier_still_checks_real_answers():
    assert math_match("so the answer is \\boxed{\\frac{1}{2}}", "0.5")
    assert math_match("The total is 1,234 apples.", "1234")
    assert math_match("\\boxed{x^2+2x+1}", "(x+1)^2")
    assert not math_match("\\boxed{3}", "4")
    assert STATS["checks"] > 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=5000))
def test_integer_verifier_on_any_text(text):
    started = time.monotonic()
    got = extract_first_integer(text)
    assert got is None or got.lstrip("-").isdigit()
    assert integers_match(text, "7") in (True, False)
    assert time.monotonic() - started < LIMIT_S


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(list("0123456789{}^\\/()+-*=., frcabox\x00\u200f٤")
                                + ["\\frac", "\\boxed{", "\\sqrt", "^{", "\\left(", "\\right)"]),
                max_size=200).map("".join))
def test_math_verifier_on_latex_like_text(text):
    started = time.monotonic()
    assert math_match(text, "12") in (True, False)
    assert time.monotonic() - started < 2 * LIMIT_S


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-10**30, max_value=10**30), st.text(alphabet=" abc=\n", max_size=20))
def test_right_integer_always_matches(n, prefix):
    assert integers_match(f"{prefix}{n}", str(n))
    assert math_match(f"{prefix}\\boxed{{{n}}}", str(n))
