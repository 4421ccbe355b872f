"""Run a study: expand the grid, check the inputs up front, run the missing trials with an
executor, store each row as it arrives, and write the report.

Layout of a study directory::

    .trainwise.lock     held by the one trainwise process working here (see lock.py)
    results.db          one row per trial (see store.py)
    study.json          the config and the trial ids of the latest invocation
    trials/<id>/        checkpoint.pt, metrics.jsonl, model.pt, result.json per trial
    report.md, report.html, *.png
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from ..data import load_dataset
from ..errors import TrainwiseError
from ..interrupt import Interrupted
from ..io import atomic_write_text, remove_stale_tmp
from ..lock import DirLock
from ..tasks import METRIC
from ..config import TrialConfig
from .config import StudyConfig
from .executors import LocalExecutor, ProcessExecutor
from .progress import StudyProgress, format_duration
from .store import Store


def ensure_writable(path: Path) -> None:
    """Create ``path`` if needed and check a file can be written there."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise TrainwiseError(
            f"study directory {path} is not writable ({e.strerror or e}); choose another with --out"
        ) from None


def check_inputs(cfg: StudyConfig):
    """Load the data and fail before any trial runs if they are missing, a budget is impossible, or
    a regimen's model, sampler or transform cannot be built and stepped on a real batch.

    Returns the config with the data's fingerprint (user datasets), its trials, every trial's
    planned optimizer steps by trial id, and the loaded data."""
    from .preflight import preflight

    data = load_dataset(cfg.dataset)
    cfg = cfg.with_fingerprint(data)
    trials = cfg.trials()
    planned = {t.config_hash(): t.make_budget(data.n_train).total_steps for t in trials}
    preflight(trials, data)
    return cfg, trials, planned, data


def describe_data(cfg: StudyConfig, data) -> str:
    """One line on the report: which data, how many samples in each split, the class names."""
    d = cfg.dataset
    where = d.path or d.function or ""
    paired = data.views is not None  # retrieval: pairs in groups, split by group (data/paired.py)
    val = ""
    if data.y_val is not None:
        how = "whole groups" if paired else "stratified by class"
        val = (f" / {len(data.y_val)} validation ({d.val_fraction:.0%} of the training set, {how}, "
               f"split_seed {d.split_seed}{'; carved because the config names no val_fraction' if getattr(cfg, 'auto_validation', False) else ''})")
    unit = " pairs" if paired else ""
    sizes = f"{data.n_train} train{unit}{val} / {len(data.y_test)} test{unit}"
    if paired:
        groups = len(data.y_test.unique())
        what = f"two views {' and '.join(str(v) for v in data.views)}, {groups} test groups (queries per direction)"
    else:
        names = getattr(data, "classes", None) or []
        shown = ", ".join(names[:20]) + (f", … ({len(names)} in all)" if len(names) > 20 else "")
        what = f"inputs {tuple(data.input_shape)}"
        sizes += f", {data.num_classes} classes" + (f": {shown}" if shown else "")
    return (f"Data: {d.name}{' ' + where if where else ''}, {what}, {sizes}" +
            (f" (fingerprint {d.fingerprint})" if d.fingerprint else "") + ".")


def make_executor(name: str, workers: int, progress: bool | None = None, address: str | None = None,
                  gpus_per_trial: float | None = None):
    if gpus_per_trial is not None and name != "ray":
        raise TrainwiseError("--gpus-per-trial is for --executor ray; with --workers N the N worker processes "
                             "share the GPU the trials name (train.device), no setting needed")
    if name == "ray":
        from .ray_executor import RayExecutor  # optional extra

        return RayExecutor(workers, address, gpus_per_trial=gpus_per_trial)
    if name == "processes" or (name == "local" and workers > 1):
        return ProcessExecutor(workers)
    return LocalExecutor(progress)


def run_study(cfg: StudyConfig, out: Path, workers: int = 1, retry_failed: bool = False,
              executor: str = "local", address: str | None = None, progress: bool | None = None,
              echo=print, report: bool = False, gpus_per_trial: float | None = None) -> list[dict]:
    """Run the study's missing trials into ``out`` and return every trial's row; with ``report``
    also write report.md/html, under the same lock.

    The inputs are checked (``check_inputs``) before anything is written. ``progress``: None or
    True draws live bars on a terminal; False prints a line per trial. On SIGINT/SIGTERM
    (``trainwise.interrupt``) every finished trial is stored, running ones checkpoint, and
    ``Interrupted`` propagates."""
    ex = make_executor(executor, workers, False, address, gpus_per_trial)  # fails early if e.g. Ray is missing
    cfg, trials, planned, data = check_inputs(cfg)
    about = describe_data(cfg, data)
    del data  # each trial loads its own (in its worker)
    ensure_writable(out)
    with DirLock(out, f"trainwise study {cfg.name}"):
        remove_stale_tmp(out)
        store = Store(out / "results.db")
        try:
            rows = _run_locked(cfg, out, trials, planned, store, ex, retry_failed, progress, echo, about)
        finally:
            store.close()
        if report:
            main_report(out, rows, f"trainwise study: {cfg.name}", echo, notes=about)
    return rows


def _run_locked(cfg, out, trials, planned, store, ex, retry_failed, progress, echo, about="") -> list[dict]:
    ids = [t.config_hash() for t in trials]
    atomic_write_text(out / "study.json", json.dumps(
        {"name": cfg.name, "config": cfg.model_dump(mode="json"), "trial_ids": ids, "data": about}, indent=2))
    return run_trials(cfg, out, trials, planned, store, ex, retry_failed, progress, echo, auto_val_note(cfg))


def auto_val_note(cfg) -> str:
    """The line a run prints when the validation split was carved for it (``StudyConfig.auto_validation``)."""
    if not getattr(cfg, "auto_validation", False):
        return ""
    return (f"no dataset.val_fraction: {cfg.dataset.val_fraction:.0%} of the training set is held out as the "
            "validation split the verdict picks on (set dataset.val_fraction: 0 to train on all of it)")


def run_trials(cfg, out, trials, planned, store, ex, retry_failed=False, progress=None, echo=print,
               note: str = "") -> list[dict]:
    """Run ``trials`` not yet stored (failed ones again with ``retry_failed``) with the executor
    ``ex``, store each row as it arrives, and return the stored rows of all ``trials``. The caller
    holds the directory's lock and has checked the inputs (``planned``: steps by trial id)."""
    ids = [t.config_hash() for t in trials]
    jobs = []
    for t, tid in zip(trials, ids):
        status = store.status(tid)
        if status == "done" or (status == "failed" and not retry_failed):
            continue
        jobs.append((tid, t.model_dump(mode="json"), str(out / "trials" / tid)))
    skipped = len(trials) - len(jobs)
    echo(f"study {cfg.name!r}: {len(trials)} trials, {skipped} already stored, {len(jobs)} to run -> {out}")
    if note:  # e.g. auto_val_note: printed under the first line
        echo(note)

    by_id = {tid: t for t, tid in zip(trials, ids)}
    live = progress is not False and sys.stderr.isatty()
    bars = StudyProgress({tid: planned[tid] for tid, _, _ in jobs},
                         {tid: f"{by_id[tid].regimen} b={by_id[tid].budget} seed={by_id[tid].seed}" for tid, _, _ in jobs},
                         live)
    stored = 0
    try:
        for tid, status, metrics, error in ex.run(jobs, on_progress=bars.progress):
            t = by_id[tid]
            store.put(tid, t.model_dump(mode="json"), status, metrics, error)
            stored += 1
            bars.done(tid)
            key = f"test_{METRIC[t.task]}"  # the task's metric (tasks.py)
            what = (f"{key} {metrics[key]:.4f} in {metrics['wall_time']:.1f}s "
                    f"(cpu {metrics.get('cpu_time', float('nan')):.1f}s)" if metrics
                    else f"FAILED: {error.splitlines()[0] if error else 'no error recorded'}")
            eta = f"; ETA {format_duration(bars.eta())}" if stored < len(jobs) else ""
            echo(f"  [{stored}/{len(jobs)}] {t.regimen} budget={t.budget} seed={t.seed}: {what}{eta}")
    except Interrupted as e:
        bars.close()
        echo(f"interrupted ({e}): {stored} of {len(jobs)} trials finished and stored, running trials "
             "checkpointed; rerun the same command to resume")
        e.reported = True
        raise
    finally:
        bars.close()
    return store.rows(set(ids))


def time_steps(trial: TrialConfig, data, steps: int = 6) -> dict:
    """Time ``steps`` optimizer steps of ``trial`` on ``data`` (in this process, nothing written):
    the median ``wall`` and ``cpu`` (process CPU) seconds per step over the steps after the first,
    and ``cpu_spent``, the process CPU time the whole measurement took."""
    import statistics
    import time

    from ..train import train

    stamps: list[tuple[float, float]] = []
    c0 = time.process_time()
    train(trial, None, progress=False, data=data, until=steps,
          on_step=lambda *_: stamps.append((time.perf_counter(), time.process_time())))
    gaps = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps[1:], stamps[2:])]  # [0] is the start call
    return dict(wall=statistics.median(g[0] for g in gaps) if gaps else 0.0,
                cpu=statistics.median(g[1] for g in gaps) if gaps else 0.0,
                cpu_spent=time.process_time() - c0)


def dry_run(cfg: StudyConfig, out: Path, workers: int = 1, retry_failed: bool = False, steps: int = 6,
            echo=print) -> dict:
    """What ``run_study`` would do, without writing anything: grid size, trials stored and to run,
    and the time to run them, from ``steps`` timed optimizer steps of each regimen's first trial
    (training steps only: evaluation and start-up come on top)."""
    cfg, trials, planned, data = check_inputs(cfg)
    status = {}
    if (out / "results.db").is_file():
        store = Store.open_existing(out / "results.db")
        status = {t.config_hash(): store.status(t.config_hash()) for t in trials}
        store.close()
    todo = [t for t in trials if not (status.get(t.config_hash()) == "done"
                                      or (status.get(t.config_hash()) == "failed" and not retry_failed))]
    per_step: dict[str, float] = {}
    for t in todo:
        if t.regimen not in per_step:
            per_step[t.regimen] = time_steps(t, data, steps)["wall"]
    seconds = sum(planned[t.config_hash()] * per_step[t.regimen] for t in todo) / max(1, min(workers, len(todo)))
    echo(f"study {cfg.name!r}: {len(cfg.regimen_list())} regimens x {len(cfg.budgets)} budgets x "
         f"{len(cfg.seeds)} seeds = {len(trials)} trials; {len(trials) - len(todo)} stored, {len(todo)} to run")
    for reg, sec in per_step.items():
        echo(f"  {reg}: {sec * 1000:.1f} ms per step (median of {steps - 1} timed steps)")
    echo(f"estimated training time with {workers} worker(s): {format_duration(seconds)} "
         "(optimizer steps only; evaluation and start-up come on top)")
    return dict(trials=len(trials), stored=len(trials) - len(todo), to_run=len(todo), seconds=seconds,
                per_step=per_step)


def main_report(out: Path, rows: list[dict], title: str, echo=print, notes: str = "",
                advice: dict | None = None) -> Path:
    """Write the report (with ``advice``, trainwise advise's answer, at its top) and print the
    table, the verdict and the advice."""
    from .report import console_table, write_report

    with DirLock(out, f"trainwise report {out}", fix=f"make {out} writable; its report is kept as it is"):
        html = write_report(out, rows, title, notes=notes, echo=echo, advice=advice)
    from .verdict import metric_of, sentence, verdict

    echo(console_table(rows))
    if advice is not None:
        from .advise import advice_summary

        for line in advice_summary(advice, bold=lambda s: s):
            echo(line)
    for v in verdict(rows, metric=metric_of(rows)):  # the answer, chosen on validation data (see verdict.py)
        echo(sentence(v, bold=lambda s: s))
    echo(f"report: {html}")
    return html


__all__ = ["run_study", "run_trials", "dry_run", "time_steps", "ensure_writable", "check_inputs", "main_report"]
