"""A watch on code evaluation while a verifier check runs: every eval/exec there is recorded
and, in the verify worker, refused.

Verifiers must never run model output as code. Patching ``builtins.eval`` cannot show that: a
library holding its own reference bypasses the patch, and an error raised into the code under
test is swallowed by its ``except Exception``. This module watches with Python's audit hook
instead (the ``exec`` event fires for every eval/exec of a string or a code object, whoever
calls it) and records what it sees; whoever started the check reads the record afterwards.

What counts, while a check runs (inside ``checking()``, per thread):
  - any eval/exec, except module imports (an importlib frame on the stack: a library's own
    code, possibly imported lazily by the check) and ``ALLOWED_CODEGEN``;
  - any call of sympy's ``parse_expr`` (again except imports: sympy's unit prefixes sympify
    their names at import), which is what ``sympify`` of a string runs (it execs ``from sympy
    import *`` and evals a translation of the text). ``guard_sympy_parser()`` swaps every
    reference to it for one that records (and in the worker refuses) during a check.
Outside checks nothing is recorded: libraries may do what they like at import and set-up time.

The hook cannot be removed once added, so ``install()`` is for processes that verify: the
verify worker (``refuse=True``: the call raises ``EvaluationRefused``, the check scores 0) and
test sessions (``refuse=False``: record only, so the code under test behaves as in production).
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

# Library functions that build code at run time from numbers, never from text: their exec is
# allowed during a check. (file suffix, function name)
ALLOWED_CODEGEN = (
    ("sympy/polys/monomials.py", "_build"),  # MonomialOps: kernels whose source is a0..an-1 for n variables
)
MAX_RECORDS = 1000  # a record is evidence, not a log: the first thousand are plenty

_state = threading.local()
_records: list[str] = []
_installed = {"hook": False, "refuse": False, "modules": 0}
_lock = threading.Lock()


class EvaluationRefused(RuntimeError):
    """Code evaluation attempted during a verifier check (raised inside the verify worker)."""


@contextmanager
def checking():
    """Mark the current thread as running a verifier check (nests)."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


def in_check() -> bool:
    return getattr(_state, "depth", 0) > 0


def record(what: str) -> None:
    """Add one finding (also used by the verify worker's parent to merge the worker's findings)."""
    with _lock:
        if len(_records) < MAX_RECORDS:
            _records.append(what)


def take() -> list[str]:
    """The findings so far; clears them."""
    with _lock:
        found = list(_records)
        _records.clear()
    return found


def install(refuse: bool = False) -> None:
    """Start watching this process (idempotent; ``refuse`` can only be switched on)."""
    _installed["refuse"] = _installed["refuse"] or refuse
    if not _installed["hook"]:
        _installed["hook"] = True
        sys.addaudithook(_hook)
    if _installed["modules"] != len(sys.modules):  # a scan of every module: only when more were loaded
        _installed["modules"] = len(sys.modules)
        guard_sympy_parser()


def _where(frame) -> str:
    code = frame.f_code
    path = code.co_filename.replace("\\", "/")
    short = path.split("site-packages/")[-1].split("/sgpo/")[-1]
    return f"{short}:{frame.f_lineno} ({code.co_name})"


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _allowed(frame) -> bool:
    path = frame.f_code.co_filename.replace("\\", "/")
    return any(path.endswith(suffix) and frame.f_code.co_name == name for suffix, name in ALLOWED_CODEGEN)


def _hook(event: str, args: tuple) -> None:
    if event == "compile" and in_check():
        _state.source = args[0]  # what the next exec event runs, if it came from text
        return
    if event != "exec" or not in_check():
        return
    caller = sys._getframe(1)
    if _importing(caller) or _allowed(caller):
        return
    source = getattr(_state, "source", None)
    _state.source = None
    shown = source.decode("utf-8", "replace") if isinstance(source, bytes) else getattr(args[0], "co_name", "?")
    record(f"eval/exec of {str(shown)[:120]!r} at {_where(caller)}")
    if _installed["refuse"]:
        raise EvaluationRefused("sgpo verifiers run no eval/exec during a check")


def guard_sympy_parser() -> None:
    """Swap every loaded reference to sympy's ``parse_expr`` for one that, during a check,
    records the call (and refuses it with ``SympifyError`` where evaluation is refused);
    outside checks it is the original.

    Covers ``sympify(text)`` (it imports ``parse_expr`` from its module at each call) and
    libraries that imported ``parse_expr`` themselves. Call again after importing more modules.
    """
    parser = sys.modules.get("sympy.parsing.sympy_parser")
    if parser is None:
        return
    original = getattr(parser.parse_expr, "__wrapped__", parser.parse_expr)
    guarded = parser.parse_expr if hasattr(parser.parse_expr, "__wrapped__") else _guarded(original)
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            if value is original:
                namespace[name] = guarded


def _guarded(original):
    from sympy.core.sympify import SympifyError

    def parse_expr(text, *args, **kwargs):
        caller = sys._getframe(1)
        if in_check() and not _importing(caller):
            record(f"sympy parse_expr({str(text)[:120]!r}) at {_where(caller)}")
            if _installed["refuse"]:
                raise SympifyError(text, "sgpo verifiers never parse text with sympy's parse_expr (it runs eval)")
        return original(text, *args, **kwargs)

    parse_expr.__wrapped__ = original
    parse_expr.__doc__ = original.__doc__
    return parse_expr
