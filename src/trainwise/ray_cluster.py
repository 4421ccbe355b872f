"""Reaching a Ray cluster: import Ray, connect within a timeout, and size a trial's GPU share.

Used by the study's Ray executor (``study/ray_executor.py``) and multi-split's Ray pool
(``multisplit/executors.py``); it sits below both so that neither imports the other.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from .errors import TrainwiseError

INSTALL_HINT = "--executor ray needs Ray, an optional extra: pip install 'trainwise[ray]'"
CONNECT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_ENV = "TRAINWISE_RAY_CONNECT_TIMEOUT"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise TrainwiseError(INSTALL_HINT) from None
    return ray


def _wants_gpu(config: dict) -> bool:
    return str(config.get("train", {}).get("device", "cpu")).split(":")[0] in ("cuda", "auto")


def check_gpus_per_trial(value: float | None) -> float | None:
    """A GPU share Ray accepts: a fraction in (0, 1] (to 4 decimals) or a whole number of GPUs."""
    if value is None:
        return None
    if not (0 < value <= 1 or (value > 1 and float(value).is_integer())):
        raise TrainwiseError(f"--gpus-per-trial {value:g}: give a fraction in (0, 1] to share a GPU among trials "
                             "(0.25: four trials per GPU) or a whole number of GPUs per trial")
    if value < 1e-4:
        raise TrainwiseError(f"--gpus-per-trial {value:g} is below Ray's smallest share 0.0001; give at least 0.0001")
    return value


def trial_gpus(config: dict, cluster_gpus: float, workers: int, gpus_per_trial: float | None = None) -> float:
    """The GPUs a trial asks Ray for: 0 for a CPU trial or a cluster without GPUs; else
    ``gpus_per_trial`` when given, or the cluster's GPUs shared among the ``workers`` trials
    that run at once, at most 1 (rounded down to Ray's 4 decimals)."""
    if cluster_gpus <= 0 or not _wants_gpu(config):
        return 0.0
    if gpus_per_trial is not None:
        return gpus_per_trial
    return min(1.0, max(1e-4, int(cluster_gpus / max(1, workers) * 1e4) / 1e4))


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``ray://host:port``; None for ``auto`` and the like."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.split("/", 1)[0].rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


class _DropNotMainThreadWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "not the main thread" not in record.getMessage()


def connect_timeout_default() -> float:
    raw = os.environ.get(CONNECT_TIMEOUT_ENV)
    if raw is None:
        return CONNECT_TIMEOUT_S
    try:
        value = float(raw)
        if value <= 0:
            raise ValueError
    except ValueError:
        raise TrainwiseError(f"{CONNECT_TIMEOUT_ENV}={raw!r} is not a positive number of seconds") from None
    return value


def unreachable(address: str, why: str) -> TrainwiseError:
    return TrainwiseError(
        f"cannot reach the Ray cluster at {address} ({why}); check --address (host:6379 for the cluster's "
        f"GCS, ray://host:10001 for Ray Client, or auto), that the cluster is up and that this machine can "
        f"reach it ({CONNECT_TIMEOUT_ENV} sets how long to wait)")


def connect(ray, address: str, timeout: float, **kw) -> None:
    """``ray.init(address=address, **kw)`` within ``timeout`` seconds, or a one-line ``TrainwiseError``:
    first a TCP connection to the address (when it names host:port), then ``ray.init`` in a helper
    thread, since Ray retries an unreachable address for many minutes. (A local Ray must not be
    started this way: its processes die with the thread that started them.)"""
    hp = _host_port(address)
    if hp is not None:
        try:
            socket.create_connection(hp, timeout=timeout).close()
        except socket.timeout:
            raise unreachable(address, f"no answer within {timeout:g}s") from None
        except OSError as e:
            raise unreachable(address, e.strerror or type(e).__name__) from None
    box: dict = {}

    def init() -> None:
        try:
            ray.init(address=address, **kw)
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    quiet = _DropNotMainThreadWarning()  # ray.init warns that it sets no SIGTERM handler off the main thread
    log = logging.getLogger("ray._private.worker")
    log.addFilter(quiet)
    try:
        t = threading.Thread(target=init, name="trainwise-ray-init", daemon=True)
        t.start()
        t.join(timeout)
    finally:
        log.removeFilter(quiet)
    if t.is_alive():
        raise unreachable(address, f"ray.init did not finish within {timeout:g}s")
    if "error" in box:
        e = box["error"]
        if isinstance(e, KeyboardInterrupt):
            raise e
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise unreachable(address, f"{type(e).__name__}: {first}"[:300]) from None
