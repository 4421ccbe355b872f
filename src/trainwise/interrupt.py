"""Cooperative interruption: a signal sets a flag, the training loop checks it between steps,
writes a checkpoint and raises ``Interrupted``; the run resumes from there.

``install()`` makes SIGINT (Ctrl-C) and SIGTERM set the flag; a second SIGINT stops at once
(``KeyboardInterrupt``). ``Interrupted`` derives from ``BaseException`` so that code catching
``Exception`` (an executor storing a failed trial) does not store an interruption as a failure.
"""

from __future__ import annotations

import signal
import threading

_flag = threading.Event()
_signum: list[int] = []


class Interrupted(BaseException):
    """A run stopped on request; its checkpoint (when it has a run directory) holds its progress."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # 130 for SIGINT, 143 for SIGTERM


def request(signum: int = signal.SIGINT) -> None:
    if not _flag.is_set():
        _signum[:] = [signum]
    _flag.set()


def requested() -> bool:
    return _flag.is_set()


def signum() -> int:
    return _signum[0] if _signum else signal.SIGINT


def reset() -> None:
    _flag.clear()
    _signum.clear()


def check() -> None:
    """Raise ``Interrupted`` if a stop was requested (call it where stopping loses nothing)."""
    if _flag.is_set():
        raise Interrupted(signum())


def _handler(sig, frame) -> None:
    if sig == signal.SIGINT and _flag.is_set():
        raise KeyboardInterrupt  # the second Ctrl-C: stop now
    request(sig)


def install(signals=(signal.SIGINT, signal.SIGTERM)):
    """Route ``signals`` to the flag (main thread only); return a function restoring the old handlers."""
    try:
        old = {s: signal.signal(s, _handler) for s in signals}
    except ValueError:  # not the main thread: leave signals alone
        return lambda: None

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore
