"""math-verify equivalence with no sympify of model text; runs inside the verify worker.

math-verify turns numbers into sympy objects with ``sympy.Number(text)``, and so does
latex2sympy2_extended, its LaTeX parser. For a string that is ``sympify(text)``, which is
``parse_expr``: an ``exec('from sympy import *')`` and an ``eval`` of code built from the text.
``load()`` replaces those constructors with ``safe_number``, which builds ``sympy.Integer`` /
``sympy.Float`` from text that a regular expression has validated, and leaves every other
reference to ``parse_expr`` guarded (``eval_guard.guard_sympy_parser``: refused during a check).
Only LaTeX extraction is used: math-verify's plain-expression extraction is ``parse_expr`` itself.

math-verify's own time limits are off (``None``): they arm ``signal.alarm`` and cancel each
other; the worker's deadline (sgpo/tasks/verify_worker.py) is the one that holds.
"""

from __future__ import annotations

import logging
import re

# Digits with an optional fraction and exponent, as math-verify's grammar emits them.
_NUMBER_TEXT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([-+]?[0-9]+))?")
MAX_NUMBER_CHARS = 4000  # below Python's 4300-digit int() limit; answers are far shorter
MAX_EXPONENT = 1000  # sympy.Float("1e300000") takes seconds (an exact power of ten) and is no answer

# Answers whose checks import what math-verify and sympy load lazily (units, sets, matrices).
WARM_UP = (("x^2+2x+1", "(x+1)^2"), ("0.5", "\\frac{1}{2}"), ("\\{1,2\\}", "\\{2,1\\}"), ("50\\%", "0.5"),
           ("\\sqrt{2}", "2^{1/2}"), ("1.5e3", "1500"), ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "(1,2)"))
_loaded: dict = {}


def safe_number(text: str):
    """A sympy number from numeric text, without sympify: what ``sympy.Number(text)`` gives.

    Integer for digits (``"007"`` -> 7), Float for a fraction or an exponent (``"1.5e3"``),
    with the precision ``sympify`` would give. Raises ValueError for anything else, and for an
    exponent beyond ``MAX_EXPONENT``.
    """
    import sympy

    text = text.strip()
    match = _NUMBER_TEXT.fullmatch(text) if len(text) <= MAX_NUMBER_CHARS else None
    if match is None:
        raise ValueError(f"not a plain number: {text[:40]!r}")
    if match.group(1) is not None and abs(int(match.group(1))) > MAX_EXPONENT:
        raise ValueError(f"exponent out of range (|e| > {MAX_EXPONENT}): {text[:40]!r}")
    if text.lstrip("+-").isdigit():
        return sympy.Integer(int(text))
    return sympy.Float(text)


def _parse_number(self, text: str):
    """latex2sympy2_extended's ``_Latex2Sympy.parse_number``, built by ``safe_number``."""
    return safe_number(text.replace(",", ""))


def load() -> None:
    """Import math-verify and route its number construction through ``safe_number`` (once).

    Raises RuntimeError if the libraries no longer have the constructors this replaces: a
    newer math-verify must be checked before it is trusted with model text.
    """
    if _loaded:
        return
    import latex2sympy2_extended
    import latex2sympy2_extended.latex2sympy2 as l2s
    import math_verify
    import math_verify.parser as mv_parser
    from math_verify import LatexExtractionConfig

    missing = [name for owner, name in ((l2s, "Number"), (l2s._Latex2Sympy, "parse_number"), (mv_parser, "Number"))
               if not hasattr(owner, name)]
    if missing:
        raise RuntimeError(f"math-verify {getattr(math_verify, '__version__', '?')} / latex2sympy2_extended "
                           f"{getattr(latex2sympy2_extended, '__version__', '?')}: {missing} not found; "
                           "sgpo's safe number construction (sgpo/tasks/math_equivalence.py) needs updating")
    l2s.Number = safe_number  # convert_number: "1,234"-style answers
    l2s._Latex2Sympy.parse_number = _parse_number  # every NUMBER / E_NOTATION / percent token
    mv_parser.Number = safe_number  # plain-expression extraction (not used here, but never sympify)
    # The worker's deadline replaces math-verify's signal-based limits; silence its warning that they are off.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    _loaded["latex"] = [LatexExtractionConfig()]
    for got, want in WARM_UP:  # sympy and math-verify import more on first use: do it here, not in a check
        equivalent(got, want)


def equivalent(got: str, want: str) -> bool:
    """True if the answer ``got`` equals the reference ``want`` by math-verify (LaTeX parsing)."""
    from math_verify import parse, verify

    load()
    gold = parse(f"${want}$", extraction_config=_loaded["latex"], parsing_timeout=None)
    pred = parse(f"$\\boxed{{{got}}}$", extraction_config=_loaded["latex"], parsing_timeout=None)
    return bool(gold and pred and verify(gold, pred, timeout_seconds=None))
