"""One process at a time per output directory.

``DirLock(out)`` takes an exclusive ``flock`` on ``out/.trainwise.lock`` and writes the owner's
pid, host and command into it. A second ``trainwise`` on the same directory gets one line naming
the holder (exit 2). The kernel releases an ``flock`` when its process dies, so a lock left by
a killed run is simply taken over; the file's stale contents name the dead owner in a message.

Locks are advisory and local: two machines writing one directory on a network filesystem that
does not support ``flock`` are not protected.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from .errors import TrainwiseError

LOCK_FILE = ".trainwise.lock"
_HELD: dict[str, int] = {}  # lock paths this process holds -> depth (a lock is re-entrant in-process)


class DirLock:
    def __init__(self, directory: str | os.PathLike, what: str = "trainwise", echo=None,
                 fix: str = "choose another --out"):
        self.path = Path(directory) / LOCK_FILE
        self.what = what
        self.fix = fix
        self.echo = echo if echo is not None else (lambda m: print(m, file=sys.stderr))
        self.fd: int | None = None

    def _holder(self) -> dict:
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def acquire(self) -> "DirLock":
        key = str(self.path.resolve())
        if key in _HELD:  # this process holds it already (a study's report under the study's lock)
            _HELD[key] += 1
            self.fd = -1
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise TrainwiseError(f"cannot lock {self.path.parent} ({e.strerror or e}); {self.fix}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            h = self._holder()
            who = f"pid {h.get('pid', '?')} on {h.get('host', '?')}" + (f" ({h['command']})" if h.get("command") else "")
            raise TrainwiseError(f"{self.path.parent} is in use by {who}; wait for it to finish or stop it") from None
        prev = self._holder()
        if prev.get("pid"):  # the previous owner died without releasing (a clean exit empties the file)
            self.echo(f"trainwise: taking over the lock of {self.path.parent} from pid {prev['pid']} on "
                      f"{prev.get('host', '?')}, which ended without releasing it")
        info = dict(pid=os.getpid(), host=socket.gethostname(), command=self.what, since=time.time())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self.fd = fd
        _HELD[key] = 1
        return self

    def release(self) -> None:
        key = str(self.path.resolve())
        if self.fd == -1:  # an inner, re-entrant hold (released last-in first-out)
            _HELD[key] -= 1
            self.fd = None
            return
        if self.fd is not None:
            _HELD.pop(key, None)
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "DirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
