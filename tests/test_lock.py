"""One trainwise process per directory: a second gets one line naming the holder; a lock left by
a killed process is taken over with a message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from trainwise.cli import main
from trainwise.errors import TrainwiseError
from trainwise.lock import LOCK_FILE, DirLock

HOLD = """
import sys, time
from trainwise.lock import DirLock
DirLock(sys.argv[1], "holder-test").acquire()
print("locked", flush=True)
time.sleep(120)
"""


def hold_lock_in_child(path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_holder_is_refused_naming_the_first(tmp_path):
    proc = hold_lock_in_child(tmp_path)
    try:
        with pytest.raises(TrainwiseError, match=rf"in use by pid {proc.pid} on .*holder-test"):
            DirLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_killed_process_is_taken_over_with_a_message(tmp_path):
    proc = hold_lock_in_child(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    said = []
    with DirLock(tmp_path, echo=said.append):
        assert (tmp_path / LOCK_FILE).read_text().count(str(os.getpid())) == 1
    assert len(said) == 1 and f"from pid {proc.pid}" in said[0]
    with DirLock(tmp_path, echo=said.append):  # released cleanly: no message the second time
        pass
    assert len(said) == 1


def test_lock_is_reentrant_in_one_process(tmp_path):
    with DirLock(tmp_path):
        with DirLock(tmp_path):
            pass
        proc = subprocess.run([sys.executable, "-c", "import sys; from trainwise.lock import DirLock; "
                               "DirLock(sys.argv[1]).acquire()", str(tmp_path)], capture_output=True, text=True)
        assert proc.returncode != 0 and "in use by" in proc.stderr  # still held after the inner release
    DirLock(tmp_path).acquire().release()


STUDY = dict(name="locked", dataset={"name": "synthetic", "synthetic": {"n_train": 4096, "n_test": 64, "size": 8}},
             model={"name": "mlp", "hidden": 64}, train={"epochs": 30, "batch_size": 32, "threads": 1},
             seeds=[0, 1])


TINY = dict(dataset={"name": "synthetic", "synthetic": {"n_train": 64, "n_test": 32, "size": 8}},
            model={"name": "linear"}, train={"epochs": 1, "batch_size": 16, "threads": 1})
CONFIGS = {"study": {**TINY, "name": "s"}, "train": TINY, "report": TINY,
           "multisplit": {**TINY, "name": "m", "arms": [{"name": "one", "k": 1, "transfer": "none"}]},
           "probe-order": {"dataset": TINY["dataset"], "model": {"name": "linear"}, "classes": [0, 1],
                           "train_samples": 4, "batch_size": 2}}


@pytest.mark.parametrize("command", ["study", "report", "train", "multisplit", "probe-order"])
def test_every_writing_command_refuses_a_directory_in_use(tmp_path, capsys, command):
    """Two `trainwise study` on one --out both trained every trial; now the second gets exit 2."""
    out = tmp_path / "out"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(CONFIGS[command]))
    (out).mkdir()
    (out / "results.db").write_bytes(b"")
    proc = hold_lock_in_child(out)
    try:
        code = main([command, str(cfg), "--out", str(out)] if command != "report" else ["report", str(out)])
    finally:
        proc.kill()
        proc.wait()
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"in use by pid {proc.pid}" in err, err


def test_two_real_studies_on_one_directory(tmp_path):
    out = tmp_path / "out"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(STUDY))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    first = subprocess.Popen([sys.executable, "-m", "trainwise.cli", "study", str(cfg), "--out", str(out),
                              "--no-progress"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and str(first.pid) not in ((out / LOCK_FILE).read_text()
                                                                if (out / LOCK_FILE).exists() else ""):
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "trainwise.cli", "study", str(cfg), "--out", str(out)],
                                env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert second.stderr.strip().splitlines() == [second.stderr.strip()]
        assert f"in use by pid {first.pid}" in second.stderr
    finally:
        first.kill()
        first.wait()
