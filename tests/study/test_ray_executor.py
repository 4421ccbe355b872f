"""The Ray executor on a real local Ray instance (2 CPUs, shared by the tests of this module).

Ray is a dev dependency: without it these tests fail (on import), they are never skipped.
The tests that start their own Ray in a subprocess come first, before the module's session
exists, so that two Ray instances never share this machine's two cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
import torch
import yaml

from trainwise.errors import TrainwiseError
from trainwise.study.config import StudyConfig
from trainwise.study.ray_executor import CONNECT_TIMEOUT_ENV, INSTALL_HINT, RayExecutor
from trainwise.study.runner import run_study
from helpers import stored_rows, stored_status, wait_for

BASE = dict(
    name="ray",
    dataset={"name": "synthetic", "val_fraction": 0, "synthetic": {"n_train": 1024, "n_test": 128, "size": 8}},
    model={"name": "mlp", "hidden": 32, "depth": 1},
    # one torch thread everywhere, so the in-process run and the Ray workers do the same float math
    train={"epochs": 4, "batch_size": 32, "threads": 1, "checkpoint_every": 20},
    seeds=[0, 1, 2, 3],
)
TIMING = {"wall_time", "cpu_time", "time_to_target"}


def cli(tmp_path: Path, study: dict, *args: str) -> tuple[list[str], Path]:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    out = tmp_path / "out"
    return [sys.executable, "-m", "trainwise.cli", "study", str(path), "--out", str(out), "--no-progress", *args], out


def test_ctrl_c_stops_a_ray_study_and_its_ray_within_seconds(tmp_path):
    """The driver starts its own Ray; Ctrl-C (SIGINT to the whole process group, Ray's processes
    included): finished trials stored, running ones checkpointed, Ray shut down, no traceback."""
    study = {**BASE, "dataset": {"name": "synthetic", "val_fraction": 0, "synthetic": {"n_train": 2048, "n_test": 64, "size": 8}},
             "seeds": [0, 1], "budgets": [0.02, 1.0], "train": {**BASE["train"], "epochs": 300}}
    trials = StudyConfig(**study).trials()
    short = [t.config_hash() for t in trials if t.budget == 0.02]
    long = [t.config_hash() for t in trials if t.budget == 1.0]
    cmd, out = cli(tmp_path, study, "--executor", "ray", "--workers", "2")
    proc = subprocess.Popen(cmd, stdout=open(tmp_path / "stdout.txt", "w"), stderr=open(tmp_path / "stderr.txt", "w"),
                            start_new_session=True)
    try:
        wait_for(lambda: stored_status(out) == {t: "done" for t in short}
                 and all((out / "trials" / t / "checkpoint.pt").exists() for t in long),
                 120, "the short trials stored and the long ones checkpointed", proc)
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(20)
        print(f"the Ray driver exited {time.monotonic() - t0:.1f}s after Ctrl-C")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    err = (tmp_path / "stderr.txt").read_text()
    assert rc == 130, err
    assert "Traceback" not in err + (tmp_path / "stdout.txt").read_text()
    assert stored_status(out) == {t: "done" for t in short}
    for t in long:
        assert (out / "trials" / t / "checkpoint.pt").exists() and not (out / "trials" / t / "result.json").exists()


def test_unreachable_address_fails_within_the_connect_timeout(tmp_path, monkeypatch):
    # in this process: the TCP check refuses before ray.init is ever called
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    ex = RayExecutor(2, "127.0.0.1:1", connect_timeout=2)
    t0 = time.monotonic()
    with pytest.raises(TrainwiseError) as e:
        list(ex.run([("t", {}, str(tmp_path / "t"))]))
    assert time.monotonic() - t0 < 5
    msg = str(e.value)
    assert "\n" not in msg and "127.0.0.1:1" in msg and "--address" in msg and CONNECT_TIMEOUT_ENV in msg
    # the command line: one line, exit 2, seconds rather than Ray's minutes of retries
    monkeypatch.setenv(CONNECT_TIMEOUT_ENV, "1.5")
    assert RayExecutor(2, "127.0.0.1:1").connect_timeout == 1.5
    cmd, _ = cli(tmp_path, BASE, "--executor", "ray", "--address", "127.0.0.1:1")
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("trainwise:")]
    assert len(lines) == 1 and "cannot reach the Ray cluster at 127.0.0.1:1" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and took < 30, took


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


def test_ray_tasks_report_progress_while_they_run(ray_session, tmp_path):
    study = {**BASE, "seeds": [0, 1], "train": {**BASE["train"], "epochs": 80}}
    jobs = [(t.config_hash(), t.model_dump(mode="json"), str(tmp_path / t.config_hash()))
            for t in StudyConfig(**study).trials()]
    log: list[tuple] = []
    for outcome in RayExecutor(2).run(jobs, on_progress=lambda *e: log.append(("progress", *e))):
        log.append(("outcome", outcome[0], outcome[1]))
    total = 80 * 32
    for tid, _, _ in jobs:
        mine = [e for e in log if e[1] == tid]
        assert mine[-1] == ("outcome", tid, "done")
        steps = [e[2] for e in mine[:-1]]
        assert steps[0] == 0 and steps[-1] == total and steps == sorted(steps)
        assert any(0 < s < total for s in steps), steps
    assert ray.is_initialized()  # the fixture's session is left running


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


def test_order_probe_jobs_run_as_ray_tasks_with_the_local_numbers(ray_session, tmp_path):
    """``trainwise probe-order --executor ray``: each chunk of orders is a Ray task (study/probe_runner.py)."""
    from trainwise.study.probe_order import ProbeConfig
    from trainwise.study.probe_runner import ProbeStore, run_probe

    cfg = ProbeConfig(dataset=BASE["dataset"], model={"name": "mlp", "hidden": 8, "depth": 1}, classes=[0, 2],
                      train_samples=8, batch_size=2, chunk=6, greedy=[])
    run_probe(cfg, tmp_path / "local", echo=lambda m: None)
    run_probe(cfg, tmp_path / "ray", executor="ray", workers=2, echo=lambda m: None)
    a, b = ProbeStore(tmp_path / "local" / "probe.db", cfg), ProbeStore(tmp_path / "ray" / "probe.db", cfg)
    try:
        assert a.rows(0, []) == b.rows(0, []) and len(a.rows(0, [])) == 24
    finally:
        a.close(), b.close()
    pids = {json.loads(p.read_text().splitlines()[0])["pid"] for p in (tmp_path / "ray").glob("jobs/*/attempts.jsonl")}
    assert os.getpid() not in pids and len(pids) >= 1
