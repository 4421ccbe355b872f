"""Run a study's trials as Ray tasks, on this machine or on a Ray cluster.

``RayExecutor(workers, address).run(jobs, on_progress=None)`` yields
``(trial_id, status, metrics, error)`` exactly like ``LocalExecutor`` and ``ProcessExecutor``:
each trial is one Ray task that calls ``run_trial(config, run_dir)``, and only the driver
writes the study database. With ``on_progress``, tasks report ``(trial_id, step, total)``
(at most twice a second per trial, and the last step) to a small queue actor the driver polls.

- No ``address``: a private local Ray instance starts with this machine's CPUs (and GPUs),
  no dashboard, and is shut down when the study ends. If Ray is already initialised in
  this process (a notebook, a test fixture), that session is used and left running.
- ``address`` (``host:6379``, ``ray://host:10001`` or ``auto``): joins an existing cluster;
  trial run directories must then be on a filesystem the workers share with the driver,
  because a trial checkpoints to, and resumes from, its ``trials/<id>/`` directory. An
  address that does not accept a TCP connection, or a ``ray.init`` that does not finish,
  within ``connect_timeout`` seconds (default 30, or ``TRAINWISE_RAY_CONNECT_TIMEOUT``) is a
  one-line ``TrainwiseError`` (Ray itself retries an unreachable address for many minutes).

Resources: like ``ProcessExecutor``, ``workers`` is the number of trials run at once; each
trial asks Ray for ``cores // workers`` CPUs (at least 1, at most the largest node's) and
uses that many torch threads. On a cluster with GPUs a trial with ``train.device`` cuda/auto
asks for ``gpus_per_trial`` GPUs (``--gpus-per-trial``: a fraction in (0, 1] shares a GPU, e.g.
0.25 runs four trials on each; a whole number gives a trial several), by default the cluster's
GPUs shared among the ``workers`` trials at once, at most 1 (``--workers 4`` on one GPU: 0.25
each). Ray only schedules by these numbers; the trials on one GPU share its memory and time.

Stopping: SIGINT or SIGTERM to the driver (``trainwise.interrupt``) cancels the trials not
started yet and asks the running ones to stop (``ray.cancel(force=False)``, which the task
turns into an interruption: the trial checkpoints at its next step); the executor yields the
outcomes that finished, force-cancels what still runs ``stop_grace`` seconds later, shuts
down the Ray session it started, and raises ``Interrupted``. Interrupted trials are no
outcomes: running the study again resumes them from their checkpoints.

Worker death: a trial's task is retried once by Ray (``max_retries=1``, system failures
only: a killed or crashed worker process or a lost node; Python exceptions are caught in
the task and stored as failures, never retried). The retry resumes from the trial's last
checkpoint, so it reaches the same final weights. A second death stores the trial as
failed with the Ray error, and the rest of the study goes on. Each attempt appends
``{host, pid, time}`` to ``trials/<id>/attempts.jsonl`` so a retry is visible.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Iterable, Iterator

from .. import interrupt
from ..errors import TrainwiseError
from ..interrupt import Interrupted
from ..ray_cluster import (CONNECT_TIMEOUT_ENV, INSTALL_HINT, _import_ray,  # noqa: F401
                           check_gpus_per_trial, connect, connect_timeout_default, trial_gpus)
from .executors import (PROGRESS_INTERVAL_S, STOP_GRACE_S, STOP_SIGNALS, Job, Outcome, ProgressFn, _safe_run,
                        record_attempt, stop_on_signals)

MAX_RETRIES = 1
INTERRUPTED = "interrupted"  # the status a task returns when a stop request ended it (never stored)


def _ray_trial(trial_id: str, config: dict, run_dir: str, threads: int, progress=None) -> Outcome:
    """The body of one Ray task (runs in a Ray worker process, whose main thread runs tasks)."""
    import torch

    torch.set_num_threads(threads)
    try:
        record_attempt(run_dir)
    except OSError:  # the trial reports an unwritable run directory itself
        pass
    on_step = None
    if progress is not None:  # a ray.util.queue.Queue the driver polls
        last = [0.0]

        def on_step(step: int, total: int) -> None:
            now = time.monotonic()
            if step >= total or now - last[0] >= PROGRESS_INTERVAL_S:
                last[0] = now
                try:
                    progress.put_nowait((trial_id, step, total))
                except Exception:  # progress is a display: never fail a trial over it
                    pass

    # ray.cancel(force=False) interrupts the task as a SIGINT would: route that to the flag the
    # training loop checks, so the trial checkpoints at its next step (a worker runs many tasks:
    # start each with the flag clear, and leave the worker's handlers as they were)
    main = threading.current_thread() is threading.main_thread()
    restore = interrupt.install((signal.SIGINT,)) if main else None
    interrupt.reset()
    try:
        return _safe_run(trial_id, config, run_dir, False, on_step)
    except (Interrupted, KeyboardInterrupt):
        return trial_id, INTERRUPTED, None, None
    finally:
        if restore is not None:
            restore()
        interrupt.reset()


class RayExecutor:
    name = "ray"

    def __init__(self, workers: int = 1, address: str | None = None, max_retries: int = MAX_RETRIES,
                 connect_timeout: float | None = None, stop_grace: float = STOP_GRACE_S,
                 gpus_per_trial: float | None = None):
        self.gpus_per_trial = check_gpus_per_trial(gpus_per_trial)
        self.ray = _import_ray()
        self.workers = max(1, workers)
        self.address = address
        self.max_retries = max_retries
        self.connect_timeout = connect_timeout if connect_timeout is not None else connect_timeout_default()
        self.stop_grace = stop_grace

    def _start(self) -> bool:
        """Connect to (or start) Ray; return True when this executor owns the session."""
        ray = self.ray
        if ray.is_initialized():
            return False
        kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if self.address:
            connect(ray, self.address, self.connect_timeout, **kw)
        else:
            import torch

            # in this thread: Ray's local processes die with the thread that started them
            ray.init(num_cpus=os.cpu_count() or 1, num_gpus=torch.cuda.device_count(), **kw)
        return True

    def _cpus_per_trial(self) -> int:
        ray = self.ray
        total = int(ray.cluster_resources().get("CPU", 1))
        largest = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=1)
        return max(1, min(largest, total // self.workers))

    def run(self, jobs: Iterable[Job], on_progress: ProgressFn | None = None) -> Iterator[Outcome]:
        jobs = list(jobs)
        if not jobs:
            return
        main = threading.current_thread() is threading.main_thread()
        handlers = {s: signal.getsignal(s) for s in STOP_SIGNALS} if main else {}
        owned = self._start()
        queue = None
        try:
            if on_progress is not None:
                from ray.util.queue import Queue

                queue = Queue(actor_options={"num_cpus": 0})
            with stop_on_signals():  # after ray.init, which sets a SIGTERM handler of its own
                yield from self._run(jobs, on_progress, queue)
        finally:
            if queue is not None:
                try:
                    queue.shutdown(force=True)
                except Exception:
                    pass
            if owned:
                self.ray.shutdown()
                for s, h in handlers.items():  # the handlers from before ray.init
                    if h is not None:
                        signal.signal(s, h)

    def _run(self, jobs: list[Job], on_progress: ProgressFn | None, queue) -> Iterator[Outcome]:
        ray = self.ray
        cpus = self._cpus_per_trial()
        gpus = float(ray.cluster_resources().get("GPU", 0))
        if self.gpus_per_trial is not None and self.gpus_per_trial > gpus:
            raise TrainwiseError(f"--gpus-per-trial {self.gpus_per_trial:g} but the Ray cluster has {gpus:g} GPUs: "
                                 "no trial could be scheduled; lower --gpus-per-trial or add GPU nodes")
        task = ray.remote(_ray_trial)
        refs = {}
        for tid, cfg, rd in jobs:
            os.makedirs(rd, exist_ok=True)
            opts = dict(num_cpus=cpus, max_retries=self.max_retries, retry_exceptions=False,
                        name=f"trial-{tid}")
            share = trial_gpus(cfg, gpus, self.workers, self.gpus_per_trial)
            if share:
                opts["num_gpus"] = share
            refs[task.options(**opts).remote(tid, cfg, rd, cpus, queue)] = tid
        pending = list(refs)
        stop: int | None = None
        deadline = 0.0
        try:
            while pending:
                if stop is None and interrupt.requested():
                    stop, deadline = interrupt.signum(), time.monotonic() + self.stop_grace
                    for ref in pending:  # not started: dropped; running: checkpoint and stop
                        ray.cancel(ref, force=False)
                elif stop is not None and time.monotonic() > deadline:
                    for ref in pending:
                        ray.cancel(ref, force=True)
                    pending = []
                    break
                done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                self._poll(queue, on_progress)
                for ref in done:
                    outcome = self._outcome(ref, refs[ref], stop is not None)
                    if outcome is not None:
                        yield outcome
            self._poll(queue, on_progress)
        except BaseException as e:  # an error, the caller gave up, or a second Ctrl-C: stop the tasks left
            for ref in pending:
                try:
                    ray.cancel(ref, force=isinstance(e, KeyboardInterrupt))
                except Exception:
                    pass
            raise
        if stop is not None:
            raise Interrupted(stop)

    def _outcome(self, ref, tid: str, stopping: bool) -> Outcome | None:
        """The outcome of a finished task; None for a cancelled or interrupted one (no outcome)."""
        ray = self.ray
        try:
            outcome = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            return None
        except ray.exceptions.RayError as e:  # the worker (or its node) died, retries spent
            if stopping:
                return None
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return tid, "failed", None, f"worker died: {type(e).__name__}: {first}"
        if outcome[1] == INTERRUPTED:
            if not interrupt.requested():  # stopped from outside the driver: stop the study
                interrupt.request(signal.SIGTERM)
            return None
        return outcome

    def _poll(self, queue, on_progress: ProgressFn | None) -> None:
        if queue is None or on_progress is None:
            return
        try:
            n = queue.qsize()
            items = queue.get_nowait_batch(n) if n else []
        except Exception:  # the queue actor is gone: no more progress, the study goes on
            return
        for tid, step, total in items:
            on_progress(tid, step, total)


__all__ = ["RayExecutor", "INSTALL_HINT", "CONNECT_TIMEOUT_ENV", "connect", "connect_timeout_default", "trial_gpus",
           "check_gpus_per_trial"]
