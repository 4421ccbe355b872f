"""A study's progress: trials done of N, a bar per running trial, and an overall ETA.

The ETA is measured, not guessed: optimizer steps still to run (every pending trial's planned
steps less the steps its run has reached) divided by the study's recent throughput in steps per
second of wall time since the first trial started, which counts evaluation, loading and how
many trials run at once.
Executors report steps through ``on_progress(trial_id, step, total)`` (workers and Ray too).
On a terminal it draws rich bars; otherwise the runner's one line per finished trial carries
the ETA.
"""

from __future__ import annotations

import time


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class StudyProgress:
    def __init__(self, planned: dict[str, int], labels: dict[str, str], live: bool, clock=time.monotonic):
        self.planned = dict(planned)  # trial id -> planned steps
        self.labels = labels
        self.reached: dict[str, int] = {}  # trial id -> steps its run has reached
        self.first: dict[str, int] = {}  # trial id -> first step seen this invocation (resumed runs)
        self.finished: set[str] = set()
        self.clock = clock
        self.start = clock()
        self.bar = self.overall = None
        self.tasks: dict[str, int] = {}
        if live and planned:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), transient=True)
            self.bar.start()
            self.overall = self.bar.add_task(f"trials 0/{len(planned)}", total=sum(planned.values()), info="")

    def progress(self, tid: str, step: int, total: int) -> None:
        if not self.first:  # the clock starts with the first trial's first step, after worker start-up
            self.start = self.clock()
        self.first.setdefault(tid, step)  # a run reports its starting step first (0, or a resumed step)
        self.reached[tid] = step
        self.planned[tid] = max(total, step)
        if self.bar is not None:
            if tid not in self.tasks:
                self.tasks[tid] = self.bar.add_task(f"  {self.labels.get(tid, tid)}", total=total, info="")
            self.bar.update(self.tasks[tid], completed=step, total=total)
            self._update_overall()

    def done(self, tid: str) -> None:
        self.finished.add(tid)
        self.reached[tid] = self.planned.get(tid, self.reached.get(tid, 0))
        if self.bar is not None:
            if tid in self.tasks:
                self.bar.remove_task(self.tasks.pop(tid))
            self._update_overall()

    def eta(self) -> float | None:
        """Seconds left, from the steps run in this invocation per second of wall time."""
        run = sum(self.reached[t] - self.first.get(t, 0) for t in self.reached)
        elapsed = self.clock() - self.start
        if run <= 0 or elapsed <= 0:
            return None
        left = sum(max(0, n - self.reached.get(t, 0)) for t, n in self.planned.items() if t not in self.finished)
        return left / (run / elapsed)

    def summary(self) -> str:
        return f"trials {len(self.finished)}/{len(self.planned)}, ETA {format_duration(self.eta())}"

    def _update_overall(self) -> None:
        self.bar.update(self.overall, description=f"trials {len(self.finished)}/{len(self.planned)}",
                        completed=sum(self.reached.values()), total=sum(self.planned.values()),
                        info=f"ETA {format_duration(self.eta())}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
