"""Run a study: expand the grid, check the inputs up front, run the missing trials with an
executor, store each row as it arrives, and write the report.

Layout of a study directory::

    results.db          one row per trial (see store.py)
    study.json          the config and the trial ids of the latest invocation
    trials/<id>/        checkpoint.pt, metrics.jsonl, model.pt, result.json per trial
    report.md, report.html, *.png
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..data import load_dataset
from ..errors import TrainwiseError
from ..io import atomic_write_text
from .config import StudyConfig, TrialConfig
from .executors import LocalExecutor, ProcessExecutor
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


def check_inputs(cfg: StudyConfig, trials: list[TrialConfig]) -> None:
    """Fail before any trial runs if the data are missing or a budget is impossible."""
    data = load_dataset(cfg.dataset)
    for t in trials:
        t.make_budget(data.n_train)


def make_executor(name: str, workers: int, progress: bool | None = None, address: str | None = None):
    if name == "ray":
        from .ray_executor import RayExecutor  # optional extra

        return RayExecutor(workers, address)
    if name == "processes" or (name == "local" and workers > 1):
        return ProcessExecutor(workers)
    return LocalExecutor(progress)


def run_study(cfg: StudyConfig, out: Path, workers: int = 1, retry_failed: bool = False,
              executor: str = "local", address: str | None = None, progress: bool | None = None,
              echo=print) -> list[dict]:
    trials = cfg.trials()
    ex = make_executor(executor, workers, progress, address)  # fails early if e.g. Ray is missing
    ensure_writable(out)
    check_inputs(cfg, trials)
    store = Store(out / "results.db")
    ids = [t.config_hash() for t in trials]
    atomic_write_text(out / "study.json", json.dumps(
        {"name": cfg.name, "config": cfg.model_dump(mode="json"), "trial_ids": ids}, indent=2))

    jobs = []
    for t, tid in zip(trials, ids):
        status = store.status(tid)
        if status == "done" or (status == "failed" and not retry_failed):
            continue
        jobs.append((tid, t.model_dump(mode="json"), str(out / "trials" / tid)))
    skipped = len(trials) - len(jobs)
    echo(f"study {cfg.name!r}: {len(trials)} trials, {skipped} already stored, {len(jobs)} to run -> {out}")

    by_id = {tid: t for t, tid in zip(trials, ids)}
    try:
        for i, (tid, status, metrics, error) in enumerate(ex.run(jobs), 1):
            t = by_id[tid]
            store.put(tid, t.model_dump(mode="json"), status, metrics, error)
            what = (f"test_acc {metrics['test_acc']:.4f} in {metrics['wall_time']:.1f}s" if metrics
                    else f"FAILED: {error.splitlines()[0]}")
            echo(f"  [{i}/{len(jobs)}] {t.regimen} budget={t.budget} seed={t.seed}: {what}")
        rows = store.rows(set(ids))
    finally:
        store.close()
    return rows


def main_report(out: Path, rows: list[dict], title: str, echo=print) -> Path:
    from .report import console_table, write_report

    echo(console_table(rows))
    html = write_report(out, rows, title)
    echo(f"report: {html}")
    return html


__all__ = ["run_study", "ensure_writable", "check_inputs", "main_report"]
