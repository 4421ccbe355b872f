"""What a run tells its user: a progress bar on a terminal, plain log lines otherwise,
metrics as JSON lines, and TensorBoard scalars when the ``tensorboard`` extra is installed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .io import atomic_write_text


class RunLog:
    def __init__(self, run_dir: Path | None, total_steps: int, title: str, progress: bool | None = None,
                 start_step: int = 0, metric: str = "acc"):
        self.run_dir = run_dir
        self.metric = metric  # shown on the progress bar: test_<metric>
        self.total = total_steps
        self.title = title
        if progress is None:  # auto: a bar on a terminal, plain lines otherwise
            progress = sys.stderr.isatty()
            self.lines = not progress
        else:  # True: a bar; False: quiet (the caller reports)
            self.lines = False
        self.bar = None
        if progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(title, total=total_steps, completed=start_step, info="")
        self.tb = None
        if run_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                # on resume, drop events a killed run logged after its checkpoint at start_step
                # (the evaluation at start_step itself came before that checkpoint: it stays)
                self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1 if start_step else None)
            except ImportError:  # the tensorboard extra is not installed
                pass

    def step(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step)

    def record(self, rec: dict, history: list[dict]) -> None:
        """Log one evaluation (or gradient-variance) record; rewrite metrics.jsonl atomically from the
        full history."""
        info = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in rec.items())
        if self.bar is not None and f"test_{self.metric}" in rec:
            self.bar.update(self.task, info=f"{self.metric} {rec.get(f'test_{self.metric}', 0):.4g}")
        elif self.lines:
            print(f"[{self.title}] {info}", file=sys.stderr, flush=True)
        if self.run_dir is not None:
            text = "".join(json.dumps(r) + "\n" for r in history)
            atomic_write_text(self.run_dir / "metrics.jsonl", text)
        if self.tb is not None:
            for k, v in rec.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.tb.add_scalar(k, v, rec["step"])

    def note(self, message: str) -> None:
        """A line for the user about the run (e.g. a loss switch), where log lines go."""
        if self.bar is not None:
            self.bar.console.print(f"[{self.title}] {message}", markup=False)
        elif self.lines:
            print(f"[{self.title}] {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        if self.tb is not None:
            self.tb.close()
