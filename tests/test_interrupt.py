"""Interruption: Ctrl-C / SIGTERM checkpoint the running trial and stop; the rerun resumes to the
same final weights. Real processes and signals where the bug needed them."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch
import yaml

from trainwise import interrupt
from trainwise.interrupt import Interrupted
from trainwise.study.config import TrialConfig
from trainwise.train import train
from helpers import cli_process


@pytest.fixture(autouse=True)
def _clear_flag():
    interrupt.reset()
    yield
    interrupt.reset()


def weights(path):
    return torch.load(path / "model.pt", weights_only=True)


def test_a_requested_stop_checkpoints_mid_epoch_and_resumes_to_the_same_weights(make_trial, tmp_path):
    """A Ctrl-C after 5 of 8 steps of an epoch used to lose them all (checkpoints only at evaluations)."""
    cfg = TrialConfig(**make_trial(train={"epochs": 2, "batch_size": 32, "checkpoint_seconds": 0}))
    train(cfg, tmp_path / "whole", progress=False)

    def stop_at_5(step, total):
        if step == 5:
            interrupt.request(signal.SIGTERM)

    with pytest.raises(Interrupted) as e:
        train(cfg, tmp_path / "cut", progress=False, on_step=stop_at_5)
    assert e.value.exit_code == 143
    ck = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert ck["state"]["step"] == 5 and ck["state"]["step_in_epoch"] == 5  # mid-epoch (8 steps per epoch)
    interrupt.reset()
    train(cfg, tmp_path / "cut", resume=True, progress=False)
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)


def _cli(args):
    return cli_process(args, text=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_to_a_real_train_stops_fast_with_a_checkpoint_and_resumes_exactly(tmp_path, sig):
    """A time-based checkpoint (checkpoint_seconds) lands mid-epoch; the signal then stops the run
    within seconds with exit 128+signum, one line, and the rerun reaches the uninterrupted weights."""
    cfg = dict(dataset={"name": "synthetic", "synthetic": {"n_train": 8192, "n_test": 64, "size": 8}},
               model={"name": "mlp", "hidden": 64}, train={"epochs": 6, "batch_size": 32, "threads": 1,
                                                           "checkpoint_seconds": 0.2}, seed=1)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    assert _cli(["train", str(path), "--out", str(ref), "--no-progress"]).wait() == 0

    proc = _cli(["train", str(path), "--out", str(cut), "--no-progress"])
    deadline = time.time() + 120
    while not (cut / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.01)
    sent = time.time()
    proc.send_signal(sig)
    code = proc.wait(timeout=60)
    took = time.time() - sent
    err = proc.stderr.read().strip()
    assert code == 128 + sig, err
    assert took < 10, f"stopping took {took:.1f}s"
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "resume" in err, err
    state = torch.load(cut / "checkpoint.pt", weights_only=True)["state"]
    assert 0 < state["step"] < 6 * 256 and not (cut / "result.json").exists()

    assert _cli(["train", str(path), "--out", str(cut), "--resume", "--no-progress"]).wait() == 0
    a, b = weights(ref), weights(cut)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((ref / "result.json").read_text())["test_acc"] == \
        json.loads((cut / "result.json").read_text())["test_acc"]


def test_second_ctrl_c_stops_at_once():
    restore = interrupt.install()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt.requested()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        restore()
