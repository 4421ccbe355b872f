"""Executors run trials and hand result rows back to the driver.

A trial is a pure, serialisable unit: ``run_trial(config_dict, run_dir) -> row``. The
driver (``runner.run_study``) stores every row; executors never touch the database.

- ``LocalExecutor``: trials one after another in this process.
- ``ProcessExecutor``: N local worker processes (spawned), each with cores/N torch threads.
"""

from __future__ import annotations

import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Iterable, Iterator
import multiprocessing as mp

from ..errors import TrainwiseError

Outcome = tuple[str, str, dict | None, str | None]  # trial_id, status, metrics, error


def run_trial(config: dict, run_dir: str, progress: bool | None = None) -> dict:
    """Run one trial from its config dict; resumes from the trial's checkpoint if one exists."""
    from ..study.config import TrialConfig
    from ..train import train

    cfg = TrialConfig(**config)
    if cfg.multisplit:
        from ..multisplit.run import run_study_trial

        return run_study_trial(cfg, run_dir)
    return train(cfg, run_dir, resume=True, progress=progress)


def _safe_run(trial_id: str, config: dict, run_dir: str, progress: bool | None = None) -> Outcome:
    try:
        return trial_id, "done", run_trial(config, run_dir, progress), None
    except TrainwiseError as e:
        return trial_id, "failed", None, str(e)
    except Exception as e:  # a bug or a crash: keep the traceback in the store
        return trial_id, "failed", None, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"


Job = tuple[str, dict, str]  # trial_id, config, run_dir


class LocalExecutor:
    name = "local"

    def __init__(self, progress: bool | None = None):
        self.progress = progress

    def run(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        for tid, cfg, rd in jobs:
            yield _safe_run(tid, cfg, rd, self.progress)


def usable_cpus() -> int:
    """CPUs this process may run on (affinity-aware, unlike ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class ProcessExecutor:
    name = "processes"

    def __init__(self, workers: int):
        self.workers = workers

    def run(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        threads = max(1, usable_cpus() // self.workers)
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(threads,)) as pool:
            futs = {pool.submit(_safe_run, tid, cfg, rd, False): tid for tid, cfg, rd in jobs}
            for fut in as_completed(futs):
                try:
                    yield fut.result()
                except Exception as e:  # the worker process died
                    yield futs[fut], "failed", None, f"worker died: {type(e).__name__}: {e}"


EXECUTORS: dict[str, Callable[..., object]] = {"local": LocalExecutor, "processes": ProcessExecutor}
