"""Gradient clustering's costs against their baselines, side by side in one process
(arXiv:2007.04532; ``trainwise/gradstats/``, ``sampling/gradient_clustering.py``).

1. **Assignment pass**: one EM iteration of a snapshot (``gradstats.cluster.em_iteration``:
   eval-mode forward, the gradients w.r.t. every Linear/Conv2d output, rank-1 distances to C
   centres, size-weighted assignment, centre sums; no split) over N training images, against a
   plain forward+backward (train mode, ``loss.backward()`` into the parameters' ``.grad``) over
   the same images in the same batches. Goal: ≤ 2.0×.
2. **Step throughput between snapshots**: ``train()`` with ``gradient-clustering`` against
   ``uniform`` (same config, seed and steps); each step's wall and process CPU time from the
   loop's ``on_step``, counted only after the first snapshot (epoch ≥ 1, the snapshot step
   itself and the next two dropped), median per run. Goal: GC ≥ 0.97× uniform's steps per second.
3. **The gradient-variance meter**: one ``measure`` (T draws of the sampler at B, T uniform at
   B, T uniform at 2B) against one training step of the same run, in seconds and in steps.

Benchmark ``cnn`` (``--width``) on a stratified Fashion-MNIST subset (``--limit-per-class``), one torch
thread; the baseline and the measured variant alternate ``--repeats`` times; medians over repeats of
per-repeat ratios, wall and process CPU time.

    python benchmarks/gradient_clustering.py [--limit-per-class 200] [--width 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from trainwise.data import load_dataset
from trainwise.data.loader import gather
from trainwise.gradstats import GradStats, em_iteration, init_centres
from trainwise.models import build_model


def timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def assignment_vs_plain(data, width: int, batch: int, clusters: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = build_model("cnn", data.input_shape, data.num_classes, *data.channel_stats(), width=width)
    n = data.n_train
    probe = GradStats.for_classification(model, data.x_train, data.y_train, data.num_classes)
    gen = torch.Generator().manual_seed(0)
    ci, co = init_centres(probe.dims, clusters, gen)
    ci, co = em_iteration(probe.factors, n, ci, co, 0, gen, batch)[3:]  # centres from data, as in later passes

    def plain():
        model.train()
        for i in range(0, n, batch):
            b = gather(data.x_train, data.y_train, torch.arange(i, min(n, i + batch)), data.num_classes)
            F.cross_entropy(model(b.x), b.labels).backward()
            model.zero_grad(set_to_none=True)

    def assign():
        em_iteration(probe.factors, n, ci, co, 0, torch.Generator().manual_seed(1), batch)

    plain()
    assign()  # warm-up
    rows = []
    for _ in range(repeats):
        p, a = timed(plain), timed(assign)
        rows.append((p, a))
    return {"n": n, "plain": [r[0] for r in rows], "assign": [r[1] for r in rows]}


def trial(sampler, limit: int, width: int, batch: int, meter: dict | None = None):
    from trainwise.config import TrialConfig

    train = {"epochs": 3, "batch_size": batch, "eval_every": 10**9, "threads": 1, "checkpoint_seconds": 0}
    if meter:
        train["gradient_variance"] = meter
    return TrialConfig(dataset={"name": "fashion-mnist", "limit_per_class": limit},
                       model={"name": "cnn", "width": width}, sampler=sampler,
                       optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}, train=train)


def step_marks(cfg, data, until: int):
    from trainwise.train import train

    marks: list[tuple[float, float]] = []
    train(cfg, progress=False, data=data, until=until,
          on_step=lambda step, total: marks.append((time.perf_counter(), time.process_time())))
    return marks


def steps_between_snapshots(data, limit: int, width: int, batch: int, repeats: int, extra: int) -> dict:
    spe = data.n_train // batch  # the first snapshot opens epoch 1: step spe
    first, until = spe + 3, spe + 3 + extra
    out = {"uniform": [], "gc": []}
    for _ in range(repeats):
        for name, spec in (("uniform", "uniform"), ("gc", {"name": "gradient-clustering", "clusters": 10})):
            m = step_marks(trial(spec, limit, width, batch), data, until)
            wall = [b[0] - a[0] for a, b in zip(m[first:], m[first + 1:])]
            cpu = [b[1] - a[1] for a, b in zip(m[first:], m[first + 1:])]
            out[name].append((statistics.median(wall), statistics.median(cpu)))
    return out


def meter_cost(data, limit: int, width: int, batch: int, draws: int, repeats: int) -> list[tuple[float, float]]:
    """(seconds of one measurement, seconds of one training step) per repeat, from one run each."""
    import json
    import tempfile
    from pathlib import Path

    from trainwise.train import train

    out = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            marks: list[float] = []
            cfg = trial("uniform", limit, width, batch, {"every": 5, "draws": draws})
            train(cfg, d, progress=False, data=data, until=21, on_step=lambda s, t: marks.append(time.perf_counter()))
            recs = [json.loads(x) for x in (Path(d) / "metrics.jsonl").read_text().splitlines()]
            meas = [r["seconds"] for r in recs if r.get("kind") == "gradient_variance"]
            steps = [b - a for a, b in zip(marks[1:], marks[2:])]
            out.append((statistics.median(meas), statistics.median(sorted(steps)[: len(steps) - len(meas)])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-per-class", type=int, default=200)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--snapshot-batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30, help="timed steps after the first snapshot")
    ap.add_argument("--draws", type=int, default=10, help="the meter's T")
    ap.add_argument("--parts", default="assign,steps,meter")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from trainwise.config import DatasetConfig

    data = load_dataset(DatasetConfig(name="fashion-mnist", limit_per_class=args.limit_per_class))
    parts = args.parts.split(",")
    med = statistics.median
    print(f"cnn width {args.width}, Fashion-MNIST N = {data.n_train}, 1 thread, {args.repeats} repeats", flush=True)
    if "assign" in parts:
        r = assignment_vs_plain(data, args.width, args.snapshot_batch, 10, args.repeats)
        rw = [a[0] / p[0] for p, a in zip(r["plain"], r["assign"])]
        rc = [a[1] / p[1] for p, a in zip(r["plain"], r["assign"])]
        print(f"\nassignment pass (C = 10, batch {args.snapshot_batch}) vs plain forward+backward over N = {r['n']}:")
        print(f"  plain {med(p[0] for p in r['plain']):.2f} s wall / {med(p[1] for p in r['plain']):.2f} s CPU; "
              f"assign {med(a[0] for a in r['assign']):.2f} s / {med(a[1] for a in r['assign']):.2f} s")
        print(f"  **ratio {med(rw):.2f}x wall, {med(rc):.2f}x CPU** (goal <= 2.0; range {min(rw):.2f}-{max(rw):.2f})",
              flush=True)
    if "steps" in parts:
        r = steps_between_snapshots(data, args.limit_per_class, args.width, args.batch, args.repeats, args.steps)
        tw = [u[0] / g[0] for u, g in zip(r["uniform"], r["gc"])]
        tc = [u[1] / g[1] for u, g in zip(r["uniform"], r["gc"])]
        print(f"\nsteps between snapshots (batch {args.batch}): uniform {med(u[0] for u in r['uniform']) * 1e3:.1f} ms "
              f"wall / {med(u[1] for u in r['uniform']) * 1e3:.1f} ms CPU; gradient-clustering "
              f"{med(g[0] for g in r['gc']) * 1e3:.1f} / {med(g[1] for g in r['gc']) * 1e3:.1f} ms")
        print(f"  **GC throughput / uniform {med(tw):.3f} wall, {med(tc):.3f} CPU** (goal >= 0.97; range "
              f"{min(tw):.3f}-{max(tw):.3f})", flush=True)
    if "meter" in parts:
        r = meter_cost(data, args.limit_per_class, args.width, args.batch, args.draws, args.repeats)
        print(f"\nmeter, T = {args.draws} (batch {args.batch}): one measurement {med(m for m, _ in r):.2f} s = "
              f"**{med(m / s for m, s in r):.1f} training steps** (one step {med(s for _, s in r) * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
