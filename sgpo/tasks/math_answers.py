"""Math answer checking for free-form completions (GSM8K, MATH): boxed or final-number answers,
compared by math-verify under a time limit that holds.

A completion is untrusted text. This module bounds what is read (the last ``MAX_TAIL_CHARS``
characters, control and bidi characters removed, boxed content at most ``MAX_ANSWER_CHARS``)
and compares plain decimal numbers here, as canonical strings: most GSM8K checks end there.
Anything else goes to math-verify in the verify worker (sgpo/tasks/verify_worker.py), which
kills a check that runs past ``timeout_s``; there sympy numbers are built from validated text and
nothing parses model text with ``sympify`` (sgpo/tasks/math_equivalence.py). A check that
errors or runs out of time scores 0 and is counted, never crashing a run.
"""

from __future__ import annotations

import logging
import re
from collections import Counter

from sgpo.tasks.verify_worker import CheckFailed, CheckTimeout, worker

log = logging.getLogger(__name__)

MAX_TAIL_CHARS = 4000     # answers sit at the end of a solution; a 1 MB completion costs the same as 4 kB
MAX_ANSWER_CHARS = 300    # a boxed answer longer than this is not an answer
# NUL and other C0 controls, bidi marks/embeddings/isolates, zero-width characters.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_NUMBER = re.compile(r"[-+]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")

STATS: Counter = Counter()  # "checks", "worker_checks", "timeouts", "errors": read by tests and logged by tasks
WORKER = "math"  # the verify worker math checks share
_SETUP = ("sgpo.tasks.math_equivalence:load", ())
_EQUIVALENT = "sgpo.tasks.math_equivalence:equivalent"


def clean(text: str) -> str:
    """The tail of ``text`` without invisible/control characters."""
    return _INVISIBLE.sub("", text[-MAX_TAIL_CHARS:])


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (balanced braces, linear scan); None if absent or too long."""
    start = text.rfind("\\boxed")
    while start != -1:
        brace = text.find("{", start)
        if brace != -1 and text[start + len("\\boxed"):brace].strip() == "":
            depth = 0
            for i in range(brace, min(len(text), brace + MAX_ANSWER_CHARS + 2)):
                if text[i] == "{":
                    depth += 1
                elif text[i] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[brace + 1:i].strip()
            return None  # unbalanced or longer than an answer can be
        start = text.rfind("\\boxed", 0, start)
    return None


def final_number(text: str) -> str | None:
    """The last ASCII number in the text, thousands separators removed ("1,234.50" -> "1234.50")."""
    matches = _NUMBER.findall(text)
    return matches[-1].replace(",", "") if matches else None


def _plain_number(text: str) -> str | None:
    """Canonical form of a plain decimal number ('+007.50' -> '7.5'), else None. No int()/float() on it."""
    m = re.fullmatch(r"([-+]?)([0-9]+)(?:\.([0-9]+))?", text.strip().replace(",", ""))
    if not m:
        return None
    whole = m.group(2).lstrip("0") or "0"
    frac = (m.group(3) or "").rstrip("0")
    body = whole + (f".{frac}" if frac else "")
    return body if body == "0" or m.group(1) != "-" else "-" + body


def start_worker(wait: bool = False) -> None:
    """Start the math verify worker now (in the background unless ``wait``): the first check need not wait."""
    w = worker(WORKER)
    w.add_setup(_SETUP)
    w.start(wait)


def answer_candidate(completion: str) -> str | None:
    """What the completion answers: its last boxed content, else its last number."""
    text = clean(completion)
    return extract_boxed(text) or final_number(text)


def math_match(completion: str, answer: str, timeout_s: float = 2.0) -> bool:
    """True if the completion's answer equals the reference ``answer`` (math-verify equivalence).

    At most ``timeout_s`` seconds of checking (plus milliseconds to kill an overrunning runner);
    safe to call from any thread.
    """
    STATS["checks"] += 1
    got = answer_candidate(completion)
    if got is None:
        return False
    want = clean(answer)
    want = extract_boxed(want) or want.strip()
    a, b = _plain_number(got), _plain_number(want)
    if a is not None and b is not None:  # fast path: plain numbers, compared as canonical strings
        return a == b
    if got == want:
        return True
    STATS["worker_checks"] += 1
    try:
        return bool(worker(WORKER).call(_EQUIVALENT, (got, want), timeout_s, setup=_SETUP))
    except CheckTimeout:
        STATS["timeouts"] += 1
        log.warning("math check ran past %.1f s (answer %r...): scored 0", timeout_s, got[:40])
        return False
    except CheckFailed as err:  # a parser failure on hostile text is a wrong answer, not a crash
        STATS["errors"] += 1
        log.debug("math check failed (%s): scored 0", err)
        return False
