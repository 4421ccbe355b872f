"""Run logging: JSON lines always; TensorBoard event files (the tensorboard extra is a dev dependency)."""

import json

from trainwise.study.config import TrialConfig
from trainwise.train import train


def test_metrics_jsonl_and_tensorboard_events(make_trial, tmp_path):
    train(TrialConfig(**make_trial()), tmp_path, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1]
    assert {"step", "lr", "train_loss", "test_loss", "test_acc", "time"} <= set(lines[0])
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    acc = events.Scalars("test_acc")
    assert [e.step for e in acc] == [r["step"] for r in lines]
    assert [round(e.value, 5) for e in acc] == [round(r["test_acc"], 5) for r in lines]


def test_plain_log_lines_off_a_terminal(make_trial, capsys):
    train(TrialConfig(**make_trial()), progress=None)  # pytest's stderr is not a terminal
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "test_acc" in err[0]


def test_resumed_run_purges_tensorboard_events_past_the_checkpoint(make_trial, tmp_path):
    """A killed run logged evaluations past its last checkpoint; the resumed run logs those steps
    again. Only one copy of each step may remain."""
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = TrialConfig(**make_trial(train={"epochs": 4, "batch_size": 32, "eval_every": 2}))
    killed, paused = tmp_path / "killed", tmp_path / "paused"
    train(cfg, killed, progress=False)  # evaluations logged at steps 2, 4, ..., 32
    train(cfg, paused, progress=False, until=16)  # its checkpoint holds step 16
    # the state a kill after step 32's evaluation but before any later checkpoint than 16 leaves:
    shutil.copy(paused / "checkpoint.pt", killed / "checkpoint.pt")
    (killed / "model.pt").unlink()
    train(cfg, killed, resume=True, progress=False)
    events = EventAccumulator(str(killed / "tb"))
    events.Reload()
    steps = [e.step for e in events.Scalars("test_acc")]
    assert steps == list(range(2, 33, 2))
