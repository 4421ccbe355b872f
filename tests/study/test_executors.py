"""Executors with real processes and real signals.

- the driver killed (SIGKILL): its worker processes die with it;
- SIGINT (Ctrl-C: to the whole process group) or SIGTERM (to the driver alone): the study stops
  within seconds, finished trials are stored, running trials keep a checkpoint, no traceback;
- a worker killed mid-trial: only that trial is retried, resuming from its checkpoint; killed
  twice, that trial alone is stored as failed;
- progress: workers report steps while a trial runs, before its outcome.

Trials train a tiny MLP on synthetic 8x8 images with one torch thread; the long ones are stopped
long before they finish, and every wait polls for files instead of sleeping a fixed time.
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
import yaml

from trainwise import interrupt
from trainwise.interrupt import Interrupted
from trainwise.study.config import StudyConfig
from trainwise.study.executors import LocalExecutor, ProcessExecutor
from helpers import stored_status, wait_for

STUDY = dict(
    name="stop",
    dataset={"name": "synthetic", "val_fraction": 0, "synthetic": {"n_train": 2048, "n_test": 64, "size": 8}},
    model={"name": "mlp", "hidden": 32, "depth": 1},
    # about 1000 steps/s on one core: 300 epochs (19200 steps at budget 1.0) outlast every test
    train={"epochs": 300, "batch_size": 32, "threads": 1, "checkpoint_every": 20},
    seeds=[0, 1],
    budgets=[0.02, 1.0],  # 0.02: 300 steps, done in a moment; 1.0: long
)
STOP_LIMIT_S = 15.0  # a loaded 2-core machine; the stop itself takes 1-3 s


def ids(cfg: StudyConfig, budget: float | None = None) -> list[str]:
    return [t.config_hash() for t in cfg.trials() if budget is None or t.budget == budget]


def children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(p.name))
    return out


def alive(pid: int) -> bool:
    """Running (a zombie that nobody reaps counts as dead)."""
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def attempts(run_dir: Path) -> list[dict]:
    p = run_dir / "attempts.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def start_study(tmp_path: Path, study: dict, *extra: str) -> tuple[subprocess.Popen, Path]:
    """``trainwise study`` with 2 workers in a new session (its own process group)."""
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainwise.cli", "study", str(path), "--workers", "2", "--out", str(out),
         "--no-progress", *extra],
        stdout=open(tmp_path / "stdout.txt", "w"), stderr=open(tmp_path / "stderr.txt", "w"),
        start_new_session=True)
    return proc, out


def test_killed_driver_takes_its_workers_along(tmp_path):
    cfg = StudyConfig(**{**STUDY, "budgets": [1.0]})
    proc, out = start_study(tmp_path, STUDY | {"budgets": [1.0]})
    try:
        running = [out / "trials" / t for t in ids(cfg)]
        wait_for(lambda: all((d / "checkpoint.pt").exists() for d in running), 60, "both trials to checkpoint", proc)
        kids = children(proc.pid)
        workers = {a["pid"] for d in running for a in attempts(d)}
        assert len(workers) == 2 and workers <= set(kids)
        t0 = time.monotonic()
        proc.kill()
        proc.wait()
        wait_for(lambda: not any(map(alive, kids)), 10, f"the driver's children {kids} to exit")
        print(f"workers gone {time.monotonic() - t0:.1f}s after the driver's SIGKILL")
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("sig, group", [(signal.SIGINT, True), (signal.SIGTERM, False)], ids=["ctrl-c", "sigterm"])
def test_signal_stops_the_study_within_seconds(tmp_path, sig, group):
    cfg = StudyConfig(**STUDY)
    short, long = ids(cfg, 0.02), ids(cfg, 1.0)
    proc, out = start_study(tmp_path, STUDY)
    try:
        wait_for(lambda: stored_status(out) == {t: "done" for t in short}
                 and all((out / "trials" / t / "checkpoint.pt").exists() for t in long),
                 90, "the short trials stored and the long ones checkpointed", proc)
        kids = children(proc.pid)
        t0 = time.monotonic()
        if group:  # what a terminal's Ctrl-C does: SIGINT to every process of the foreground group
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        rc = proc.wait(STOP_LIMIT_S)
        took = time.monotonic() - t0
        print(f"{signal.Signals(sig).name}: the driver exited {took:.1f}s after the signal")
    finally:
        if proc.poll() is None:
            proc.kill()
    err = (tmp_path / "stderr.txt").read_text()
    assert rc == 128 + sig, err
    assert "Traceback" not in err and "Traceback" not in (tmp_path / "stdout.txt").read_text()
    assert "interrupted" in (tmp_path / "stdout.txt").read_text() + err
    # finished trials stored; interrupted ones are not outcomes but keep their progress
    assert stored_status(out) == {t: "done" for t in short}
    for t in long:
        assert (out / "trials" / t / "checkpoint.pt").exists() and not (out / "trials" / t / "result.json").exists()
    wait_for(lambda: not any(map(alive, kids)), 5, "the workers to exit")


def jobs_of(study: dict, root: Path) -> list[tuple[str, dict, str]]:
    return [(t.config_hash(), t.model_dump(mode="json"), str(root / t.config_hash()))
            for t in StudyConfig(**study).trials()]


def test_killed_worker_loses_only_its_trial_which_is_retried_once(tmp_path):
    """Trial A's worker is killed once: A resumes in a new worker and finishes. Trial B's worker
    is killed on both attempts: B alone is failed. The other trials never notice."""
    study = STUDY | {"seeds": [0, 1, 2, 3], "budgets": [1.0], "train": {**STUDY["train"], "epochs": 30}}
    jobs = jobs_of(study, tmp_path)
    ex = ProcessExecutor(2)
    kills: dict[str, list[int]] = {}  # trial id -> pids killed, in order
    stop = threading.Event()

    def kill(tid: str, pid: int) -> None:
        if pid in ex.pids and alive(pid):  # one of our workers, still there
            os.kill(pid, signal.SIGKILL)
            kills.setdefault(tid, []).append(pid)

    def killer() -> None:
        roles: list[str] = []  # [A, B]: the first two trials caught mid-run
        while not stop.is_set() and not (len(roles) == 2 and len(kills.get(roles[1], [])) == 2):
            for tid, _, rd in jobs:
                rd = Path(rd)
                tries = attempts(rd)
                if not tries or (rd / "result.json").exists():
                    continue
                if tid not in roles and len(roles) < 2 and (rd / "checkpoint.pt").exists():
                    roles.append(tid)
                done = len(kills.get(tid, []))
                if tid in roles and done < roles.index(tid) + 1 and len(tries) == done + 1:
                    if done == 0 and not (rd / "checkpoint.pt").exists():
                        continue
                    kill(tid, tries[-1]["pid"])
            time.sleep(0.005)

    # a progress report, with the number of attempts begun at the time: the driver handles all of a
    # dead worker's reports before it starts the retry, which writes the second line
    run_dir = {tid: Path(rd) for tid, _, rd in jobs}
    events: list[tuple[str, int, int]] = []

    def on_progress(tid: str, step: int, total: int) -> None:
        events.append((tid, step, len(attempts(run_dir[tid]))))

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        outcomes = {o[0]: o for o in ex.run(jobs, on_progress=on_progress)}
    finally:
        stop.set()
        thread.join()
    a, b = list(kills)
    assert [len(kills[a]), len(kills[b])] == [1, 2]
    assert len(outcomes) == 4
    assert outcomes[b][1] == "failed" and "worker died (signal 9, SIGKILL) twice" in outcomes[b][3]
    assert all(outcomes[t][1] == "done" for t in outcomes if t != b), outcomes
    for tid, _, rd in jobs:
        tries = attempts(Path(rd))
        assert len(tries) == {a: 2, b: 2}.get(tid, 1)
        if tid in (a, b):
            assert tries[0]["pid"] == kills[tid][0] and tries[1]["pid"] != tries[0]["pid"]
    # A's retry resumed from its checkpoint (every 20 steps): its first report is where it starts
    retry = [step for tid, step, n in events if tid == a and n == 2]
    assert retry and retry[0] > 0 and retry[0] % 20 == 0, retry
    assert outcomes[a][2]["steps"] == outcomes[a][2]["total_steps"] == 30 * 64


def test_workers_report_progress_before_the_trial_ends(tmp_path):
    study = STUDY | {"budgets": [1.0], "train": {**STUDY["train"], "epochs": 40}}
    jobs = jobs_of(study, tmp_path)
    log: list[tuple] = []
    for outcome in ProcessExecutor(2).run(jobs, on_progress=lambda *e: log.append(("progress", *e))):
        log.append(("outcome", outcome[0], outcome[1]))
    for tid, _, _ in jobs:
        mine = [e for e in log if e[1] == tid]
        assert mine[-1] == ("outcome", tid, "done")
        steps = [e[2] for e in mine[:-1]]
        total = 40 * 64
        assert steps[0] == 0 and steps[-1] == total and steps == sorted(steps)
        assert any(0 < s < total for s in steps), steps  # reports while it runs, not only at the end
        assert all(e[3] == total for e in mine[:-1])


def test_local_executor_reports_progress_and_stops_on_request(tmp_path):
    """In process: ``on_progress`` gets every step; a stop request checkpoints the running trial and
    raises ``Interrupted`` after yielding the finished ones; handlers and flag are then restored."""
    study = STUDY | {"seeds": [0, 1, 2], "budgets": [1.0], "train": {**STUDY["train"], "epochs": 2}}
    jobs = jobs_of(study, tmp_path)
    seen: list[tuple[str, int, int]] = []

    def on_progress(tid: str, step: int, total: int) -> None:
        seen.append((tid, step, total))
        if tid == jobs[1][0] and step == 50:
            interrupt.request(signal.SIGTERM)

    before = signal.getsignal(signal.SIGINT)
    got = []
    with pytest.raises(Interrupted) as e:
        for o in LocalExecutor(progress=False).run(jobs, on_progress=on_progress):
            got.append(o)
    assert e.value.exit_code == 143
    assert [(o[0], o[1]) for o in got] == [(jobs[0][0], "done")]
    assert [s for t, s, _ in seen if t == jobs[0][0]] == list(range(0, 129))
    assert Path(jobs[1][2], "checkpoint.pt").exists() and not Path(jobs[1][2], "result.json").exists()
    assert not Path(jobs[2][2]).exists()
    assert signal.getsignal(signal.SIGINT) is before and not interrupt.requested()
