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
