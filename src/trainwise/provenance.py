"""Where a result was produced: the machine and the software, for the end of every report.

``provenance()`` returns ``cpu`` (model name from /proc/cpuinfo; platform.processor() elsewhere),
``cores`` (the CPUs this process may run on: os.sched_getaffinity), ``gpu`` (the CUDA device's
name, None without one), ``python``, ``torch``, ``numpy`` and ``trainwise`` versions, and
``trainwise_commit``: ``git rev-parse HEAD`` of the checkout the package was imported from, None
when it is not a git checkout (an installed wheel) or git is missing or slow. Nothing in it
changes from one call to the next on the same machine and checkout (no timestamps).
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or None


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def gpu_name() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # a broken CUDA setup must not break a report
        return None
    return None


def git_commit(path: Path | None = None, timeout: float = 5.0) -> str | None:
    """HEAD of the git checkout holding ``path`` (default: this package), when the package's own
    files are tracked there (a venv inside some repository does not count); else None."""
    pkg = Path(path or Path(__file__).resolve().parent)
    try:
        tracked = subprocess.run(["git", "-C", str(pkg), "ls-files", "--error-unmatch", "__init__.py"],
                                 capture_output=True, text=True, timeout=timeout)
        if tracked.returncode != 0:
            return None
        head = subprocess.run(["git", "-C", str(pkg), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return commit if head.returncode == 0 and commit else None


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:
        return None


def provenance() -> dict:
    from . import __version__

    return dict(cpu=cpu_model(), cores=cores(), gpu=gpu_name(), python=platform.python_version(),
                torch=_version("torch"), numpy=_version("numpy"), trainwise=__version__,
                trainwise_commit=git_commit())


__all__ = ["provenance", "git_commit"]
