"""Run a study's trials as Ray tasks, on this machine or on a Ray cluster.

``RayExecutor(workers, address).run(jobs)`` yields ``(trial_id, status, metrics, error)``
exactly like ``LocalExecutor`` and ``ProcessExecutor``: each trial is one Ray task that
calls ``run_trial(config, run_dir)``, and only the driver writes the study database.

- No ``address``: a private local Ray instance starts with this machine's CPUs (and GPUs),
  no dashboard, and is shut down when the study ends. If Ray is already initialised in
  this process (a notebook, a test fixture), that session is used and left running.
- ``address`` (``ray://host:10001`` or ``auto``): joins an existing cluster; trial run
  directories must then be on a filesystem the workers share with the driver, because a
  trial checkpoints to, and resumes from, its ``trials/<id>/`` directory.

Resources: like ``ProcessExecutor``, ``workers`` is the number of trials run at once; each
trial asks Ray for ``cores // workers`` CPUs (at least 1, at most the largest node's) and
uses that many torch threads. On a GPU node a trial with ``train.device`` cuda/auto asks
for one GPU.

Worker death: a trial's task is retried once by Ray (``max_retries=1``, system failures
only: a killed or crashed worker process or a lost node; Python exceptions are caught in
the task and stored as failures, never retried). The retry resumes from the trial's last
checkpoint, so it reaches the same final weights. A second death stores the trial as
failed with the Ray error, and the rest of the study goes on. Each attempt appends
``{host, pid, time}`` to ``trials/<id>/attempts.jsonl`` so a retry is visible.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Iterable, Iterator

from ..errors import TrainwiseError
from .executors import Job, Outcome, _safe_run

INSTALL_HINT = "--executor ray needs Ray, an optional extra: pip install 'trainwise[ray]'"
MAX_RETRIES = 1


def _import_ray():
    try:
        import ray
    except ImportError:
        raise TrainwiseError(INSTALL_HINT) from None
    return ray


def _ray_trial(trial_id: str, config: dict, run_dir: str, threads: int) -> Outcome:
    """The body of one Ray task (runs in a Ray worker process)."""
    import torch

    from ..io import atomic_write_text

    torch.set_num_threads(threads)
    log = os.path.join(run_dir, "attempts.jsonl")
    prev = open(log).read() if os.path.exists(log) else ""
    attempt = dict(host=socket.gethostname(), pid=os.getpid(), time=time.time())
    atomic_write_text(log, prev + json.dumps(attempt) + "\n")
    return _safe_run(trial_id, config, run_dir, False)


def _wants_gpu(config: dict) -> bool:
    return str(config.get("train", {}).get("device", "cpu")).split(":")[0] in ("cuda", "auto")


class RayExecutor:
    name = "ray"

    def __init__(self, workers: int = 1, address: str | None = None, max_retries: int = MAX_RETRIES):
        self.ray = _import_ray()
        self.workers = max(1, workers)
        self.address = address
        self.max_retries = max_retries

    def _start(self) -> bool:
        """Connect to (or start) Ray; return True when this executor owns the session."""
        ray = self.ray
        if ray.is_initialized():
            return False
        kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            if self.address:
                ray.init(address=self.address, **kw)
            else:
                import torch

                ray.init(num_cpus=os.cpu_count() or 1, num_gpus=torch.cuda.device_count(), **kw)
        except ConnectionError as e:
            raise TrainwiseError(f"cannot reach the Ray cluster at {self.address!r} ({e}); "
                                 "check --address (ray://host:10001 or auto) and that the cluster is up") from None
        return True

    def _cpus_per_trial(self) -> int:
        ray = self.ray
        total = int(ray.cluster_resources().get("CPU", 1))
        largest = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=1)
        return max(1, min(largest, total // self.workers))

    def run(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        jobs = list(jobs)
        if not jobs:
            return
        ray = self.ray
        owned = self._start()
        try:
            cpus = self._cpus_per_trial()
            gpus = int(ray.cluster_resources().get("GPU", 0))
            task = ray.remote(_ray_trial)
            refs = {}
            for tid, cfg, rd in jobs:
                os.makedirs(rd, exist_ok=True)
                opts = dict(num_cpus=cpus, max_retries=self.max_retries, retry_exceptions=False,
                            name=f"trial-{tid}")
                if gpus and _wants_gpu(cfg):
                    opts["num_gpus"] = 1
                refs[task.options(**opts).remote(tid, cfg, rd, cpus)] = tid
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ref = done[0]
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as e:  # the worker (or its node) died, retries spent
                    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    yield refs[ref], "failed", None, f"worker died: {type(e).__name__}: {first}"
        finally:
            if owned:
                ray.shutdown()


__all__ = ["RayExecutor", "INSTALL_HINT"]
