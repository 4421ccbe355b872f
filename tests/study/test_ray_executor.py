"""The Ray executor on a real local Ray instance (2 CPUs, shared by the tests of this module).

Ray is a dev dependency: without it these tests fail (on import), they are never skipped.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import ray
import torch

from trainwise.errors import TrainwiseError
from trainwise.study.config import StudyConfig
from trainwise.study.ray_executor import INSTALL_HINT, RayExecutor
from trainwise.study.runner import run_study
from helpers import stored_rows

BASE = dict(
    name="ray",
    dataset={"name": "synthetic", "synthetic": {"n_train": 1024, "n_test": 128, "size": 8}},
    model={"name": "mlp", "hidden": 32, "depth": 1},
    # one torch thread everywhere, so the in-process run and the Ray workers do the same float math
    train={"epochs": 4, "batch_size": 32, "threads": 1, "checkpoint_every": 20},
    seeds=[0, 1, 2, 3],
)
TIMING = {"wall_time", "time_to_target"}


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory):
    """The reference: the same study with the in-process executor."""
    threads = torch.get_num_threads()
    try:
        return run_study(StudyConfig(**BASE), tmp_path_factory.mktemp("local"), echo=lambda *a: None)
    finally:
        torch.set_num_threads(threads)


def untimed(rows: list[dict]) -> dict[str, dict]:
    return {r["trial_id"]: {k: v for k, v in r["metrics"].items() if k not in TIMING} for r in rows}


def test_ray_study_matches_local_executor(ray_session, local_rows, tmp_path):
    got = run_study(StudyConfig(**BASE), tmp_path, workers=2, executor="ray", echo=lambda *a: None)
    assert all(r["status"] == "done" for r in got) and len(got) == 4
    assert untimed(stored_rows(tmp_path)) == untimed(local_rows)
    # the driver's session (the fixture's) is left running; each trial ran in a Ray worker
    assert ray.is_initialized()
    pids = {json.loads(p.read_text().splitlines()[0])["pid"] for p in tmp_path.glob("trials/*/attempts.jsonl")}
    assert os.getpid() not in pids and len(pids) >= 1


def kill_one_running_trial(trials: Path, killed: dict, stop: threading.Event) -> None:
    """SIGKILL the Ray worker of the first trial seen mid-run (checkpointed, not finished)."""
    while not stop.is_set():
        for d in sorted(trials.glob("*")):
            att = d / "attempts.jsonl"
            if (d / "checkpoint.pt").exists() and not (d / "result.json").exists() and att.exists():
                pid = json.loads(att.read_text().splitlines()[0])["pid"]
                try:  # still running this trial? (the proctitle Ray sets names the task)
                    title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode().strip()
                except OSError:
                    continue
                if title == f"ray::trial-{d.name}":
                    os.kill(pid, signal.SIGKILL)
                    killed.update(trial=d.name, pid=pid)
                    return
        time.sleep(0.005)


def run_with_a_kill(out: Path, monkeypatch, **executor_kw) -> tuple[list[dict], dict]:
    from trainwise.study import runner

    ex = RayExecutor(2, None, **executor_kw)
    monkeypatch.setattr(runner, "make_executor", lambda *a, **k: ex)
    killed: dict = {}
    stop = threading.Event()
    killer = threading.Thread(target=kill_one_running_trial, args=(out / "trials", killed, stop))
    killer.start()
    try:
        rows = run_study(StudyConfig(**BASE), out, workers=2, executor="ray", echo=lambda *a: None)
    finally:
        stop.set()
        killer.join()
    assert killed, "no trial was caught mid-run"
    return rows, killed


def test_killed_worker_is_retried_once_and_resumes_to_the_same_result(ray_session, local_rows, tmp_path, monkeypatch):
    rows, killed = run_with_a_kill(tmp_path, monkeypatch)
    assert all(r["status"] == "done" for r in rows) and len(rows) == 4
    attempts = (tmp_path / "trials" / killed["trial"] / "attempts.jsonl").read_text().splitlines()
    assert len(attempts) == 2 and json.loads(attempts[0])["pid"] == killed["pid"]
    assert json.loads(attempts[1])["pid"] != killed["pid"]
    # the retry resumed from the trial's checkpoint: every trial, the killed one too, equals the local run
    assert untimed(stored_rows(tmp_path)) == untimed(local_rows)


def test_killed_worker_without_retries_loses_only_its_trial(ray_session, local_rows, tmp_path, monkeypatch):
    rows, killed = run_with_a_kill(tmp_path, monkeypatch, max_retries=0)
    by_id = {r["trial_id"]: r for r in rows}
    assert len(rows) == 4
    assert by_id[killed["trial"]]["status"] == "failed" and "worker died" in by_id[killed["trial"]]["error"]
    others = {t: r for t, r in untimed(local_rows).items() if t != killed["trial"]}
    assert all(by_id[t]["status"] == "done" for t in others)
    assert {t: m for t, m in untimed([r for r in rows if r["status"] == "done"]).items()} == others


def test_missing_ray_says_how_to_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(TrainwiseError, match=r"pip install 'trainwise\[ray\]'"):
        RayExecutor(2)
    assert "trainwise[ray]" in INSTALL_HINT
