"""Executors run trials and hand their outcomes back to the driver.

A trial is a pure, serialisable unit: ``run_trial(config_dict, run_dir) -> row``. The driver
(``runner.run_study``) stores every outcome as it arrives; executors never touch the database.

Interface: ``executor.run(jobs, on_progress=None)`` takes ``(trial_id, config, run_dir)`` jobs and
yields ``(trial_id, status, metrics, error)`` outcomes in the order trials finish;
``on_progress(trial_id, step, total)`` is called in the driver process while trials run.

- ``LocalExecutor``: trials one after another in this process.
- ``ProcessExecutor``: N local worker processes (spawned), each with cores/N torch threads,
  each running one trial at a time. Trials with ``train.device: cuda`` share the GPU: each
  worker holds its own CUDA context (a few hundred MB) and its trial's data and model, and the
  GPU time-slices between the processes (CUDA MPS is not needed; with MPS running, kernels of
  different workers may also run at the same time). Spawned, never forked, so CUDA is safe.
  How to choose N: README "On a GPU".

Stopping: while ``run`` runs, SIGINT and SIGTERM request a stop (``trainwise.interrupt``; its
handlers are installed for the run unless the caller already installed them). Each running
trial checkpoints at its next step and stops; the executor yields the outcomes that finished
and then raises ``Interrupted``. An interrupted trial is no outcome: it is not stored, and
running the study again resumes it from its checkpoint. ``ProcessExecutor`` forwards the stop
to its workers as SIGTERM (a worker also stops on a SIGINT of its own, as a terminal's Ctrl-C
sends one to every process of the foreground group) and kills those still running
``stop_grace`` seconds later; a second Ctrl-C stops at once. A worker stopped by a signal that
did not come from the driver stops the whole study the same way.

Worker death (``ProcessExecutor``): a worker killed or crashed mid-trial loses only that
trial's attempt. The trial is retried once in a new worker (``max_retries=1``, as in the Ray
executor), resuming from its last checkpoint; a second death stores it as failed ("worker died
(...) twice"), and the rest of the study goes on. Python exceptions in a trial are stored as
failures, never retried. Each attempt appends ``{host, pid, time}`` to
``trials/<id>/attempts.jsonl`` so a retry is visible.

Workers die with the driver: on Linux each worker asks the kernel for SIGTERM when the driver
dies (``prctl(PR_SET_PDEATHSIG)``), and everywhere a thread in each worker checks every second
that its parent is still the driver; either way the worker checkpoints its trial and exits.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections import deque
from contextlib import contextmanager
from multiprocessing.connection import wait
from typing import Callable, Iterable, Iterator

from .. import interrupt
from ..errors import TrainwiseError
from ..interrupt import Interrupted

Outcome = tuple[str, str, dict | None, str | None]  # trial_id, status, metrics, error
Job = tuple[str, dict, str]  # trial_id, config, run_dir
ProgressFn = Callable[[str, int, int], None]  # trial_id, step, total

MAX_RETRIES = 1
STOP_GRACE_S = 30.0  # after a stop request, how long running trials get to checkpoint
PROGRESS_INTERVAL_S = 0.5  # a worker reports a trial's progress at most this often (and its last step)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_trial(config: dict, run_dir: str, progress: bool | None = None, on_step=None) -> dict:
    """Run one trial from its config dict; resumes from the trial's checkpoint if one exists.

    ``on_step(step, total)`` is called after every optimizer step (not for multi-split trials).
    A job with ``task: probe-order`` is a chunk of the order probe (``probe_order.run_chunk``)."""
    from ..config import TrialConfig
    from ..train import train

    if config.get("task") == "probe-order":
        from .probe_order import run_chunk

        return run_chunk(config, run_dir)
    cfg = TrialConfig(**config)
    if cfg.multisplit:
        from ..multisplit import run_study_trial

        return run_study_trial(cfg, run_dir)
    return train(cfg, run_dir, resume=True, progress=progress, on_step=on_step)


def _safe_run(trial_id: str, config: dict, run_dir: str, progress: bool | None = None,
              on_step=None) -> Outcome:
    """The trial's outcome; an interruption (``Interrupted``, ``KeyboardInterrupt``) propagates."""
    try:
        return trial_id, "done", run_trial(config, run_dir, progress, on_step), None
    except TrainwiseError as e:
        return trial_id, "failed", None, str(e)
    except Exception as e:  # a bug or a crash: keep the traceback in the store
        return trial_id, "failed", None, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"


def record_attempt(run_dir: str) -> dict:
    """Append ``{host, pid, time}`` to ``run_dir/attempts.jsonl``: one line per attempt at a trial."""
    from ..io import atomic_write_text

    os.makedirs(run_dir, exist_ok=True)
    log = os.path.join(run_dir, "attempts.jsonl")
    prev = open(log).read() if os.path.exists(log) else ""
    attempt = dict(host=socket.gethostname(), pid=os.getpid(), time=time.time())
    atomic_write_text(log, prev + json.dumps(attempt) + "\n")
    return attempt


def _routed() -> bool:
    return all(signal.getsignal(s) is interrupt._handler for s in STOP_SIGNALS)


@contextmanager
def stop_on_signals():
    """Within: SIGINT/SIGTERM request a stop (``trainwise.interrupt``). Nothing is changed when the
    caller already routes both there, or off the main thread (where signals cannot be handled).
    Handlers installed here are restored on leaving, and the request is then cleared: the
    ``Interrupted`` raised for it carries the signal."""
    own = threading.current_thread() is threading.main_thread() and not _routed()
    restore = interrupt.install() if own else None
    try:
        yield
    finally:
        if restore is not None:
            restore()
            interrupt.reset()


class LocalExecutor:
    name = "local"

    def __init__(self, progress: bool | None = None):
        self.progress = progress

    def run(self, jobs: Iterable[Job], on_progress: ProgressFn | None = None) -> Iterator[Outcome]:
        with stop_on_signals():
            for tid, cfg, rd in jobs:
                interrupt.check()  # a stop requested while the last trial finished
                on_step = None if on_progress is None else (lambda s, t, tid=tid: on_progress(tid, s, t))
                yield _safe_run(tid, cfg, rd, self.progress, on_step)


def usable_cpus() -> int:
    """CPUs this process may run on (affinity-aware, unlike ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ---- the worker process


def _die_with_parent(parent_pid: int) -> None:
    """Request a stop (as SIGTERM) when the driver dies: the kernel's parent-death signal on
    Linux, and a thread watching ``getppid`` everywhere (a dead parent reparents the worker)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        interrupt.request(signal.SIGTERM)

    if os.getppid() != parent_pid:  # the driver died before the death signal was set up
        interrupt.request(signal.SIGTERM)
    threading.Thread(target=watch, name="trainwise-parent-watch", daemon=True).start()


def _next_job(conn, parent_pid: int) -> Job | None:
    """The next job from the driver; None when told to stop, asked to stop, or the driver is gone."""
    while not interrupt.requested() and os.getppid() == parent_pid:
        try:
            if conn.poll(0.5):
                return conn.recv()
        except (EOFError, OSError):
            return None
    return None


def _worker_main(conn, threads: int, parent_pid: int) -> None:
    """A worker process: run the jobs the driver sends, one at a time, until told to stop.

    Messages to the driver: ("progress", tid, step, total), ("outcome", outcome),
    ("interrupted", tid, signum) when a stop request ended the trial (after its checkpoint)."""
    interrupt.install()
    _die_with_parent(parent_pid)
    if hasattr(signal, "pthread_sigmask"):  # the driver started us with them blocked
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def send(msg) -> bool:
        try:
            conn.send(msg)
            return True
        except OSError:  # the driver is gone
            return False

    code, tid = 0, None
    try:
        import torch

        torch.set_num_threads(threads)
        while (job := _next_job(conn, parent_pid)) is not None:
            tid, cfg, rd = job
            try:
                record_attempt(rd)
            except OSError:  # the trial reports an unwritable run directory itself
                pass
            last = [0.0]

            def on_step(step: int, total: int, tid=tid) -> None:
                now = time.monotonic()
                if step >= total or now - last[0] >= PROGRESS_INTERVAL_S:
                    last[0] = now
                    if not send(("progress", tid, step, total)):
                        interrupt.request(signal.SIGTERM)  # checkpoint and stop

            outcome = _safe_run(tid, cfg, rd, False, on_step)
            if not send(("outcome", outcome)):
                break
            tid = None
    except Interrupted as e:
        code = e.exit_code
        send(("interrupted", tid, e.signum))
    except KeyboardInterrupt:  # a second Ctrl-C: stop now, quietly
        code = 128 + signal.SIGINT
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # no traceback from a late Ctrl-C
    sys.exit(code)


@contextmanager
def _signals_blocked():
    """Block SIGINT/SIGTERM in this thread: a process started meanwhile inherits the block and
    receives them only once its handlers are in place (no traceback from a Ctrl-C at startup)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _Worker:
    def __init__(self, ctx, threads: int):
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, threads, os.getpid()),
                                name="trainwise-worker", daemon=True)
        with _signals_blocked():
            self.proc.start()
        child.close()
        self.conn = parent
        self.job: Job | None = None
        self.closing = False  # told to stop

    @property
    def pid(self) -> int:
        return self.proc.pid

    def give(self, job: Job) -> None:
        self.job = job
        try:
            self.conn.send(job)
        except OSError:  # it died: its sentinel says so next
            pass

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            try:
                self.conn.send(None)
            except OSError:
                pass

    def signal(self, sig: int) -> None:
        try:
            os.kill(self.proc.pid, sig)
        except (OSError, TypeError):
            pass

    def death(self) -> str:
        code = self.proc.exitcode
        if code is not None and code < 0:
            try:
                return f"signal {-code}, {signal.Signals(-code).name}"
            except ValueError:
                return f"signal {-code}"
        return f"exit code {code}"


def _times(n: int) -> str:
    return "" if n == 1 else " twice" if n == 2 else f" {n} times"


class ProcessExecutor:
    name = "processes"

    def __init__(self, workers: int, max_retries: int = MAX_RETRIES, stop_grace: float = STOP_GRACE_S):
        self.workers = max(1, workers)
        self.max_retries = max_retries
        self.stop_grace = stop_grace
        self.pids: list[int] = []  # every worker process started, in order

    def run(self, jobs: Iterable[Job], on_progress: ProgressFn | None = None) -> Iterator[Outcome]:
        jobs = list(jobs)
        if not jobs:
            return
        with stop_on_signals():
            yield from self._run(jobs, on_progress)

    def _spawn(self, ctx, threads: int, workers: list[_Worker]) -> _Worker:
        w = _Worker(ctx, threads)
        workers.append(w)
        self.pids.append(w.pid)
        return w

    def _run(self, jobs: list[Job], on_progress: ProgressFn | None) -> Iterator[Outcome]:
        ctx = mp.get_context("spawn")
        threads = max(1, usable_cpus() // self.workers)
        queue = deque(jobs)
        deaths: dict[str, int] = {}
        workers: list[_Worker] = []
        stop: int | None = None  # the signal that stops the study
        deadline = 0.0
        hurry = False  # a second Ctrl-C: kill the workers left at once
        try:
            while queue or workers:
                if stop is None and interrupt.requested():
                    stop, deadline = interrupt.signum(), time.monotonic() + self.stop_grace
                    queue.clear()
                    for w in workers:
                        w.close()
                        w.signal(signal.SIGTERM)  # never SIGINT: a second one means "stop now"
                elif stop is not None and time.monotonic() > deadline:
                    for w in workers:
                        w.signal(signal.SIGKILL)
                if stop is None:  # hand out the trials
                    for w in workers:
                        if w.job is None and not w.closing:
                            if queue:
                                w.give(queue.popleft())
                            else:
                                w.close()
                    while queue and len(workers) < self.workers:
                        self._spawn(ctx, threads, workers).give(queue.popleft())
                ready = set(wait([w.conn for w in workers] + [w.proc.sentinel for w in workers], timeout=0.25))
                out: list[Outcome] = []
                for w in list(workers):
                    exited = w.proc.sentinel in ready
                    if w.conn in ready or exited:
                        self._drain(w, out, on_progress)
                    if not exited:
                        continue
                    w.proc.join()
                    w.conn.close()
                    workers.remove(w)
                    if w.job is None or stop is not None:
                        continue
                    tid, _, rd = w.job
                    deaths[tid] = deaths.get(tid, 0) + 1
                    if deaths[tid] <= self.max_retries:
                        queue.appendleft(w.job)  # resumes from its checkpoint
                    else:
                        out.append((tid, "failed", None,
                                    f"worker died ({w.death()}){_times(deaths[tid])}; the trial's last "
                                    f"checkpoint is kept in {rd}: rerun with --retry-failed to resume it"))
                yield from out
        except KeyboardInterrupt:
            hurry = True
            raise
        finally:
            self._shutdown(workers, hurry)
        if stop is not None:
            raise Interrupted(stop)

    def _drain(self, w: _Worker, out: list[Outcome], on_progress: ProgressFn | None) -> None:
        """Handle every message ``w`` has sent."""
        while True:
            try:
                if not w.conn.poll():
                    return
                msg = w.conn.recv()
            except (EOFError, OSError):
                return
            kind = msg[0]
            if kind == "progress":
                if on_progress is not None:
                    on_progress(*msg[1:])
            elif kind == "outcome":
                w.job = None
                out.append(msg[1])
            elif kind == "interrupted":
                w.job, w.closing = None, True
                if not interrupt.requested():  # stopped from outside the driver: stop the study
                    interrupt.request(msg[2])

    def _shutdown(self, workers: list[_Worker], hurry: bool = False) -> None:
        """Stop the workers left after an error: SIGTERM (they checkpoint), SIGKILL 5 s later, or
        at once after a second Ctrl-C."""
        if not workers:
            return
        for w in workers:
            w.close()
            w.signal(signal.SIGKILL if hurry else signal.SIGTERM)
        deadline = time.monotonic() + (0.0 if hurry else min(self.stop_grace, 5.0))
        for w in workers:
            w.proc.join(max(0.0, deadline - time.monotonic()))
        for w in workers:
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            w.conn.close()


EXECUTORS: dict[str, Callable[..., object]] = {"local": LocalExecutor, "processes": ProcessExecutor}
