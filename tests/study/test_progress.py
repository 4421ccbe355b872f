"""A study's overall ETA comes from measured throughput: steps left / steps per second run."""

from __future__ import annotations

from trainwise.study.progress import StudyProgress, format_duration


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_eta_from_measured_steps_across_running_trials():
    clock = Clock()
    p = StudyProgress({"a": 100, "b": 100, "c": 200}, {}, live=False, clock=clock)
    p.progress("a", 0, 100)  # a run reports where it starts, then its steps
    p.progress("b", 0, 100)
    assert p.eta() is None  # nothing measured yet
    clock.t = 10.0
    p.progress("a", 30, 100)
    p.progress("b", 20, 100)  # two workers: 50 steps in 10 s = 5 steps/s
    assert p.eta() == (70 + 80 + 200) / 5
    clock.t = 20.0
    p.progress("a", 100, 100)
    p.done("a")
    p.progress("b", 100, 100)
    p.done("b")  # 200 steps in 20 s
    assert p.eta() == 200 / 10
    assert p.summary().startswith("trials 2/3, ETA ")


def test_a_resumed_trial_counts_only_the_steps_run_now():
    clock = Clock()
    p = StudyProgress({"a": 100}, {}, live=False, clock=clock)
    p.progress("a", 80, 100)  # resumed from a checkpoint at step 80
    clock.t = 5.0
    p.progress("a", 81, 100)  # one step in 5 s
    assert p.eta() == 19 * 5.0


def test_format_duration():
    assert [format_duration(s) for s in (None, 4.4, 65, 3725)] == ["?", "4s", "1m05s", "1h02m"]
