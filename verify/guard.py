"""Running users' code (theorem files, plug-ins, properties, samplers) so that it cannot end a
dlverify command with a false success or corrupt its output.

* ``sys.exit(...)`` in a theorem file's top-level code becomes a :class:`~verify.errors.TheoremError`
  (exit 2); raised later (in a property while it is traced), the CLI reports it the same way.
* ``os._exit(...)`` (and ``posix._exit``) are replaced, while dlverify runs, by a function that
  raises :class:`UserExit` (a ``SystemExit``) in the calling process, so they end nothing either;
  a forked child still exits normally. What cannot be intercepted from Python is a process
  ended from outside the interpreter's reach (a signal it sends itself, ``ctypes`` calling the C
  library's ``_exit``): the CLI then exits with whatever status that gives, never by reaching
  the end of a successful run.
* What a theorem file prints while it is imported goes to stderr; the CLI also routes the whole
  process's standard output to stderr while it works (``verify.cli``), so a JSON report on
  stdout holds the report alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any, Iterator, NoReturn

from verify.errors import TheoremError

_lock = threading.Lock()
_depth = 0
_saved: dict[str, Any] = {}


class UserExit(SystemExit):
    """``os._exit`` called by user code while dlverify was running it."""


def _make_exit(real: Any, pid: int):
    def _exit(status: int = 0) -> NoReturn:
        if os.getpid() != pid:  # a forked child: exit as asked
            real(status)
        raise UserExit(f"os._exit({status!r})")

    return _exit


@contextlib.contextmanager
def exits_guarded() -> Iterator[None]:
    """While inside, ``os._exit``/``posix._exit`` raise :class:`UserExit` in this process."""
    global _depth
    import posix

    with _lock:
        if _depth == 0:
            _saved["os"], _saved["posix"] = os._exit, posix._exit
            guarded = _make_exit(_saved["posix"], os.getpid())
            os._exit = guarded  # type: ignore[assignment]
            posix._exit = guarded  # type: ignore[assignment]
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                os._exit, posix._exit = _saved["os"], _saved["posix"]  # type: ignore[assignment]


def describe_exit(exc: SystemExit) -> str:
    """``sys.exit(0)`` or ``os._exit(0)``: how user code tried to end the process."""
    if isinstance(exc, UserExit):
        return str(exc.code)
    return f"sys.exit({exc.code!r})"


@contextlib.contextmanager
def user_code(where: str) -> Iterator[None]:
    """Import or run a user's code: exits are errors naming ``where``; prints go to stderr."""
    with exits_guarded(), contextlib.redirect_stdout(sys.stderr):
        try:
            yield
        except SystemExit as exc:
            raise TheoremError(f"{where} called {describe_exit(exc)} while being imported: "
                               "a theorem file must not end the process") from None
