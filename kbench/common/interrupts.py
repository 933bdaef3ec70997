"""SIGINT, SIGTERM and SIGHUP, handled alike: stop cleanly, exit 128 + signal number.

``install()`` replaces the handlers of the three signals with one that raises ``Interrupted``
(a ``KeyboardInterrupt``), so every ``finally`` runs: workers are killed, and the CSV keeps only
whole rows. The signal is also *remembered*: an exception raised while the interpreter runs a
garbage-collection callback (JAX registers one) or a ``__del__`` is swallowed as "unraisable",
which made a Ctrl-C during start-up vanish. ``checkpoint()`` re-raises a remembered signal, and
the sweep calls it between steps, so a signal is never ignored.
"""

from __future__ import annotations

import signal
import sys

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_pending: int | None = None
_previous: dict[int, object] = {}
_previous_hook = None
_depth = 0  # install() may nest (the CLI, then a command): only the outermost restores


class Interrupted(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def _handler(signum, frame):
    global _pending
    _pending = signum
    raise Interrupted(signum)


def _unraisable(info):
    # A KeyboardInterrupt swallowed in a gc callback: keep it pending (checkpoint re-raises it).
    global _pending
    if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt):
        if _pending is None:
            _pending = getattr(info.exc_value, "signum", signal.SIGINT)
        return
    (_previous_hook or sys.__unraisablehook__)(info)


def install() -> bool:
    """Install the handlers (main thread only; returns False elsewhere). Every True return
    must be paired with one ``restore()``."""
    global _pending, _previous_hook, _depth
    if _depth:
        _depth += 1
        return True
    _pending = None
    try:
        for sig in HANDLED:
            _previous[sig] = signal.signal(sig, _handler)
    except ValueError:  # not the main thread
        for sig, handler in _previous.items():
            signal.signal(sig, handler)
        _previous.clear()
        return False
    _depth = 1
    if sys.unraisablehook is not _unraisable:
        _previous_hook = sys.unraisablehook
        sys.unraisablehook = _unraisable
    return True


def restore() -> None:
    """Put back the handlers ``install`` replaced (tests run commands in-process)."""
    global _pending, _previous_hook, _depth
    if _depth > 1:
        _depth -= 1
        return
    _depth = 0
    for sig, handler in list(_previous.items()):
        try:
            signal.signal(sig, handler)
        except (ValueError, TypeError):
            pass
    _previous.clear()
    if sys.unraisablehook is _unraisable:
        sys.unraisablehook = _previous_hook or sys.__unraisablehook__
    _previous_hook = None
    _pending = None


def checkpoint() -> None:
    """Raise a signal that arrived but whose exception was swallowed."""
    if _pending is not None:
        raise Interrupted(_pending)


def pending() -> int | None:
    return _pending


def exit_code(exc: KeyboardInterrupt) -> int:
    return getattr(exc, "exit_code", 128 + signal.SIGINT)


def describe(exc: KeyboardInterrupt) -> str:
    name = getattr(exc, "name", "SIGINT")
    return f"interrupted by {name}"
