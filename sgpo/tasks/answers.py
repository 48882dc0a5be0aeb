"""Answer extraction and comparison that never evaluates model output.

Every function here treats a completion as untrusted text: it bounds how much it reads, uses
linear-time regular expressions, and compares numbers as normalised digit strings (no ``int()``
on a million-digit string, no ``eval``).
"""

from __future__ import annotations

import re

# Completions are scanned only up to this many characters: an answer is near the start for the
# embedded task, and a bound keeps a 1 MB hostile completion cheap.
MAX_SCAN_CHARS = 4096
_INTEGER = re.compile(r"[-+]?[0-9]+")


def normalize_integer(text: str) -> str | None:
    """'+007' -> '7', '-0' -> '0'; None if ``text`` is not an ASCII integer."""
    text = text.strip()
    if not _INTEGER.fullmatch(text):
        return None
    sign = "-" if text.startswith("-") else ""
    digits = text.lstrip("+-").lstrip("0") or "0"
    return "0" if digits == "0" else sign + digits


def extract_first_integer(completion: str) -> str | None:
    """The first ASCII integer in the completion, normalised; None if there is none."""
    match = _INTEGER.search(completion, 0, MAX_SCAN_CHARS)
    return normalize_integer(match.group(0)) if match else None


def integers_match(completion: str, answer: str) -> bool:
    """True if the first integer of ``completion`` equals the integer ``answer``."""
    got = extract_first_integer(completion)
    want = normalize_integer(answer)
    return got is not None and want is not None and got == want
