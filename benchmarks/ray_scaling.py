"""Study executors side by side: one fixed study of 8 short trials run end to end with

  local       the in-process executor, 1 worker, 1 torch thread (the baseline)
  processes   local worker processes, 2 workers (1 torch thread each)
  ray         a private local Ray instance with 2 CPUs, 2 trials at once (1 CPU/thread each),
              started and shut down by the executor as ``trainwise study --executor ray`` does

Reports, per executor, the median wall time of ``run_study`` over the repeats (the executors
alternate within a repeat, in rotating order), its ratio to the 1-worker run, Ray's ratio to
local processes (goal <= 1.15), Ray's per-trial overhead over processes in worker-seconds
((T_ray - T_processes) x 2 workers / 8 trials), and Ray's start + shutdown time measured alone.

Every trial runs with one torch thread, so the three differ only in parallelism and executor
overhead. (With the in-process default of 2 threads on a 2-core box that other jobs load,
thread oversubscription made the 1-worker run 8x slower than 2 processes: 310 s vs 37 s in
one repeat. That measures spinning OpenMP threads, not the executor.)

    python benchmarks/ray_scaling.py [--repeats 3] [--epochs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from trainwise.study.config import StudyConfig
from trainwise.study.runner import run_study

MODES = [("local", "local", 1), ("processes", "processes", 2), ("ray", "ray", 2)]


def study(epochs: int) -> StudyConfig:
    """8 trials (2 budgets x 4 seeds) on synthetic 16x16 images with the benchmark CNN."""
    return StudyConfig(
        name="ray_scaling",
        dataset={"name": "synthetic", "synthetic": {"n_train": 3000, "n_test": 500, "size": 16}},
        model={"name": "cnn", "width": 8},
        optimizer={"lr": 0.05},
        train={"epochs": epochs, "batch_size": 64},
        budgets=[0.5, 1.0],
        seeds=[0, 1, 2, 3],
    )


def ray_start_stop() -> float:
    import os

    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.shutdown()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args()
    cfg = study(args.epochs)
    times: dict[str, list[float]] = {m: [] for m, _, _ in MODES}
    trial_time: dict[str, list[float]] = {m: [] for m, _, _ in MODES}
    starts = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            order = MODES[r % 3:] + MODES[:r % 3]
            for name, executor, workers in order:
                out = Path(tmp) / f"{name}-{r}"
                threads = torch.get_num_threads()
                torch.set_num_threads(1)
                t0 = time.perf_counter()
                rows = run_study(cfg, out, workers=workers, executor=executor, progress=False, echo=lambda *a: None)
                times[name].append(time.perf_counter() - t0)
                torch.set_num_threads(threads)
                assert len(rows) == 8 and all(x["status"] == "done" for x in rows), rows
                trial_time[name].append(sum(x["metrics"]["wall_time"] for x in rows))
                print(f"repeat {r} {name:9s} {times[name][-1]:6.1f}s (sum of trial train times "
                      f"{trial_time[name][-1]:.1f}s)", flush=True)
            starts.append(ray_start_stop())
    med = {m: statistics.median(v) for m, v in times.items()}
    base = med["local"]
    per_trial = (med["ray"] - med["processes"]) * 2 / 8
    print("\n| executor | workers | median wall s | ratio to 1 worker | runs (s) |")
    print("|---|---|---|---|---|")
    for name, _, workers in MODES:
        runs = ", ".join(f"{t:.1f}" for t in times[name])
        print(f"| {name} | {workers} | {med[name]:.1f} | {med[name] / base:.2f} | {runs} |")
    print(f"\nray / processes (2 workers): {med['ray'] / med['processes']:.3f} (goal <= 1.15)")
    print(f"ray per-trial overhead over processes: {per_trial:+.2f} worker-s per trial")
    print(f"ray start + shutdown alone: median {statistics.median(starts):.1f}s ({', '.join(f'{s:.1f}' for s in starts)})")
    print(json.dumps(dict(times=times, trial_time=trial_time, ray_start_stop=starts)))


if __name__ == "__main__":
    main()
