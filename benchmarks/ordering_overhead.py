"""The batch orderers' cost per optimizer step against their analytic pass count, and the time of
the full order probe (arXiv:2211.14395; ``sampling/multi_attempt.py``, ``sampling/max_loss_delta.py``,
``study/probe_order.py``).

Per-step cost: ``train()`` runs of the benchmark ``cnn`` (width 16) on Fashion-MNIST (a stratified
``--limit-per-class`` subset, so that an epoch holds more batches than a max-loss-delta step tries),
batch 128, one torch thread, no evaluation or checkpoint inside the timed steps. Each step's wall
and process CPU time come from the loop's ``on_step`` callback; the first ``--skip`` steps (warm-up)
are dropped and the median of the rest is taken. uniform, multi-attempt (A = 8, 32) and
max-loss-delta (A = 8) alternate ``--repeats`` times in this one process; the table gives the
median over repeats of each sampler's median step time divided by uniform's, then divided by the
analytic pass count in training-step units (a forward 1/3, a backward 2/3 of a step):

  multi-attempt   1 + A/3      (A·B scoring forwards)
  max-loss-delta  1 + 5A/3     (the issue's count: loss, trial step, loss again, per candidate)
                  1 + 4A/3     (what this implementation runs: the "before" loss is the trial step's
                                own forward, as in the reference; the step's snapshot/restore is extra)

and, beside it, divided by the pass count with the forward's *measured* share f of a training step
(the eval-mode forward of B samples timed against a full training step of B in this process):
1 + A·f and 1 + A·(1 + f).

Probe: ``run_probe`` of ``examples/order_probe.yaml`` (720 orders) into a fresh directory with the
process executor and ``--probe-workers`` workers (spawned workers import torch and load the data),
end to end; wall time and the CPU time inside the jobs.

    python benchmarks/ordering_overhead.py [--limit-per-class 600] [--steps 24] [--repeats 3] [--probe-workers 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from trainwise.data import load_dataset
from trainwise.study.config import DatasetConfig, TrialConfig, load_config
from trainwise.train import train

SAMPLERS = {
    "uniform": ("uniform", lambda a: 1.0, lambda a, f: 1.0),
    "multi-attempt A=8": ({"name": "multi-attempt", "attempts": 8}, lambda a: 1 + 8 / 3, lambda a, f: 1 + 8 * f),
    "multi-attempt A=32": ({"name": "multi-attempt", "attempts": 32}, lambda a: 1 + 32 / 3, lambda a, f: 1 + 32 * f),
    "max-loss-delta A=8": ({"name": "max-loss-delta", "attempts": 8}, lambda a: 1 + 5 * 8 / 3,
                           lambda a, f: 1 + 8 * (1 + f)),
}


def config(sampler, limit: int) -> TrialConfig:
    return TrialConfig(
        dataset={"name": "fashion-mnist", "limit_per_class": limit}, model={"name": "cnn", "width": 16},
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}, sampler=sampler,
        train={"epochs": 1, "batch_size": 128, "eval_every": 10**9, "threads": 1, "checkpoint_seconds": 0})


def step_times(cfg: TrialConfig, data, steps: int, skip: int) -> tuple[float, float]:
    """Median wall and CPU seconds per optimizer step over steps skip..steps."""
    marks: list[tuple[float, float]] = []

    def on_step(step: int, total: int) -> None:
        marks.append((time.perf_counter(), time.process_time()))

    train(cfg, progress=False, data=data, until=steps, on_step=on_step)
    wall = [b[0] - a[0] for a, b in zip(marks[skip:], marks[skip + 1:])]
    cpu = [b[1] - a[1] for a, b in zip(marks[skip:], marks[skip + 1:])]
    return statistics.median(wall), statistics.median(cpu)


def forward_share(data, repeats: int = 20) -> float:
    """Eval-mode forward of B samples / a training step of B, same model, median of ``repeats``."""
    from trainwise.models import build_model

    torch.manual_seed(0)
    model = build_model("cnn", data.input_shape, data.num_classes, *data.channel_stats(), width=16)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = data.x_train[:128].float() / 255
    y = data.y_train[:128]
    fw, st = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        with torch.no_grad():
            model.eval()
            model(x)
            model.train()
        t1 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        fw.append(t1 - t)
        st.append(t2 - t1)
    return statistics.median(fw) / statistics.median(st)


def probe_time(workers: int) -> tuple[float, float, int]:
    from trainwise.study.probe_order import ProbeConfig
    from trainwise.study.probe_runner import run_probe

    cfg = load_config(Path(__file__).parent.parent / "examples" / "order_probe.yaml", ProbeConfig)
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        run_probe(cfg, Path(d), executor="processes", workers=workers, echo=lambda m: None)
        wall = time.perf_counter() - t
        cpu = json.loads((Path(d) / "probe.json").read_text())["took"]["cpu"]
    return wall, cpu, cfg.orders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-per-class", type=int, default=600)
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--skip", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--probe-workers", type=int, default=2, help="0: skip the probe timing")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_dataset(DatasetConfig(name="fashion-mnist", limit_per_class=args.limit_per_class))
    f = forward_share(data)
    print(f"N = {data.n_train}, batch 128, cnn width 16, 1 thread; measured forward share f = {f:.3f}", flush=True)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in SAMPLERS}
    for rep in range(args.repeats):
        for name, (spec, _, _) in SAMPLERS.items():
            times[name].append(step_times(config(spec, args.limit_per_class), data, args.steps, args.skip))
            print(f"  repeat {rep}: {name}: {times[name][-1][0] * 1000:.0f} ms/step", flush=True)
    print("\n| sampler | ms/step wall (median) | ms/step CPU | ratio to uniform (wall) | analytic passes | "
          "**ratio / analytic** | ratio / passes with measured f |")
    print("|---|---|---|---|---|---|---|")
    base_w = [t[0] for t in times["uniform"]]
    base_c = [t[1] for t in times["uniform"]]
    for name, (spec, analytic, measured) in SAMPLERS.items():
        ratio = statistics.median(t[0] / b for t, b in zip(times[name], base_w))
        ratio_cpu = statistics.median(t[1] / b for t, b in zip(times[name], base_c))
        a = analytic(None)
        extra = ""
        if name.startswith("max-loss-delta"):
            extra = f" (vs our 1 + 4A/3 = {1 + 4 * 8 / 3:.2f}: {ratio / (1 + 4 * 8 / 3):.3f})"
        print(f"| {name} | {statistics.median(t[0] for t in times[name]) * 1000:.0f} | "
              f"{statistics.median(t[1] for t in times[name]) * 1000:.0f} | {ratio:.2f} (CPU {ratio_cpu:.2f}) | "
              f"{a:.2f} | **{ratio / a:.3f}**{extra} | {ratio / measured(None, f):.3f} |")
    if args.probe_workers:
        wall, cpu, n = probe_time(args.probe_workers)
        print(f"\nfull probe ({n} orders, examples/order_probe.yaml), processes x {args.probe_workers}: "
              f"{wall:.1f} s wall end to end, {cpu:.1f} s CPU inside the jobs")


if __name__ == "__main__":
    main()
