"""Training throughput on the device at hand (a GPU when there is one, else the CPU), three tables:

1. precision: trainwise's uniform regimen at fp32, bf16, fp16 (CUDA only), with channels-last and
   with torch.compile: training images/s over the training loop (from its first step to its last,
   every bit of the loop's bookkeeping included; evaluations excluded), the loop's process CPU
   time, and the whole run's wall time (model build, compilation, final evaluations).
2. loop: trainwise's loop against a hand-written one (randperm on the device, index, autocast
   forward, ``F.cross_entropy``, backward, step, the same linear LR decay; no per-step host read),
   same model, data (on the device), batch, steps and precision, each timed from its first step to
   its last (the device synchronised), alternating; the figure is the median throughput ratio
   trainwise / hand-written (goal >= 0.97).
3. study: one study of 8 small trials run end to end by ``run_study`` with 1 worker (in-process)
   and with ``--workers N`` (processes; on a GPU they share it), one torch thread per trial.

Variants alternate in rotating order within each repeat; figures are medians over the repeats,
after one warm-up run of each variant (kernels, allocator, compilation caches).

    python benchmarks/gpu_throughput.py [--device auto] [--model cnn] [--dataset fashion-mnist]
        [--steps 200] [--batch 128] [--repeats 3] [--workers 1,4] [--parts precision,loop,study]

On a GPU (the figures BENCHMARKS.md asks for):

    python benchmarks/gpu_throughput.py --device cuda --model preact-resnet18 --steps 300 --batch 256 \\
        --repeats 5 --workers 1,4
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from trainwise.accel import Accel
from trainwise.budget import lr_at
from trainwise.data import load_dataset
from trainwise.data.base import as_float
from trainwise.models import build_model
from trainwise.study.config import DatasetConfig, StudyConfig, TrainSettings, TrialConfig
from trainwise.train import pick_device, train


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_settings(model: str, width: int | None) -> dict:
    return {"name": model, **({"width": width} if width else {})}


def budget_for(n_train: int, batch: int, steps: int) -> tuple[int, float]:
    """Epochs and budget fraction that give exactly ``steps`` optimizer steps."""
    spe = n_train // batch
    epochs = -(-steps // spe)
    return epochs, steps / (epochs * spe) + 1e-9


def trainwise_run(data, a, device, steps: int, **train_over) -> dict:
    epochs, budget = budget_for(data.n_train, a.batch, steps)
    cfg = TrialConfig(dataset={"name": data.name}, model=model_settings(a.model, a.width), optimizer={"lr": 0.05},
                      train={"epochs": epochs, "batch_size": a.batch, "eval_every": 10**9, "device": str(device),
                             "checkpoint_seconds": 0, **train_over}, budget=budget, seed=0)
    marks: list[tuple[float, float]] = []

    def on_step(step: int, total: int) -> None:  # the loop's first and last step (synchronised by its loss read)
        if step == 0 or step >= total:
            marks.append((time.perf_counter(), time.process_time()))

    t0 = time.perf_counter()
    r = train(cfg, progress=False, data=data, on_step=on_step)
    sync(device)
    r["total_wall"] = time.perf_counter() - t0
    r["loop_wall"], r["loop_cpu"] = marks[-1][0] - marks[0][0], marks[-1][1] - marks[0][1]
    assert r["steps"] == steps, (r["steps"], steps)
    return r


def hand_written(data, a, device, steps: int, precision: str) -> dict:
    """The loop a user would write for this device."""
    torch.manual_seed(0)
    mean, std = data.channel_stats()
    model = build_model(a.model, data.input_shape, data.num_classes, mean, std,
                        **({"width": a.width} if a.width else {})).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    acc = Accel(TrainSettings(precision=precision), device)
    model.train()
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    perm, pos = torch.randperm(data.n_train, device=device), 0
    for step in range(steps):
        if pos + a.batch > data.n_train:
            perm, pos = torch.randperm(data.n_train, device=device), 0
        idx = perm[pos:pos + a.batch]
        pos += a.batch
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, 0.05)
        with acc.autocast():
            logits = model(as_float(data.x_train[idx]))
        loss = F.cross_entropy(logits.float(), data.y_train[idx])
        acc.step(loss, opt)
    sync(device)
    return {"loop_wall": time.perf_counter() - t0, "loop_cpu": time.process_time() - c0}


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def precision_table(data, a, device) -> None:
    variants = [("fp32", {}), ("bf16", {"precision": "bf16"})]
    if device.type == "cuda":
        variants.append(("fp16", {"precision": "fp16"}))
    variants += [("fp32 + channels_last", {"channels_last": True}),
                 ("bf16 + channels_last", {"precision": "bf16", "channels_last": True}),
                 ("fp32 + compile", {"compile": "default"}),
                 ("bf16 + channels_last + compile", {"precision": "bf16", "channels_last": True,
                                                     "compile": "default"})]
    if a.only:
        variants = [v for v in variants if v[0] in a.only.split(",")]
    for name, over in variants:  # warm-up: kernels, allocator, compilation caches
        trainwise_run(data, a, device, min(20, a.steps), **over)
    rows: dict[str, list[dict]] = {name: [] for name, _ in variants}
    for r in range(a.repeats):
        for name, over in variants[r % len(variants):] + variants[:r % len(variants)]:
            res = trainwise_run(data, a, device, a.steps, **over)
            rows[name].append(res)
            print(f"  repeat {r} {name}: {res['samples_backpropagated'] / res['loop_wall']:.0f} img/s, "
                  f"loop wall {res['loop_wall']:.2f}s cpu {res['loop_cpu']:.2f}s, run {res['total_wall']:.2f}s, "
                  f"test_acc {res['test_acc']:.4f}", flush=True)

    def ips(x: dict) -> float:
        return x["samples_backpropagated"] / x["loop_wall"]

    base = med([ips(x) for x in rows["fp32"]]) if "fp32" in rows else None
    print("\n| variant | training images/s (median) | vs fp32 | loop wall s | loop CPU s | whole run wall s | test acc |")
    print("|---|---|---|---|---|---|---|")
    for name, res in rows.items():
        rel = f"{med([ips(x) for x in res]) / base:.2f}×" if base else "–"
        print(f"| {name} | {med([ips(x) for x in res]):,.0f} | {rel} | {med([x['loop_wall'] for x in res]):.2f} | "
              f"{med([x['loop_cpu'] for x in res]):.2f} | {med([x['total_wall'] for x in res]):.2f} | "
              f"{med([x['test_acc'] for x in res]):.4f} |")


def loop_table(data, a, device) -> None:
    precision = a.loop_precision or ("bf16" if device.type == "cuda" else "fp32")
    trainwise_run(data, a, device, min(20, a.steps), precision=precision)
    hand_written(data, a, device, min(20, a.steps), precision)
    hw, tw, ratios = [], [], []
    for r in range(a.repeats):
        pair = [("hand", lambda: hand_written(data, a, device, a.steps, precision)),
                ("trainwise", lambda: trainwise_run(data, a, device, a.steps, precision=precision))]
        got = dict((name, fn()) for name, fn in (pair if r % 2 == 0 else pair[::-1]))
        hw.append(got["hand"])
        tw.append(got["trainwise"])
        ratios.append(got["hand"]["loop_wall"] / got["trainwise"]["loop_wall"])
        print(f"  repeat {r}: hand-written {got['hand']['loop_wall']:.2f}s  trainwise "
              f"{got['trainwise']['loop_wall']:.2f}s  ratio {ratios[-1]:.3f}", flush=True)
    print(f"\n| precision | steps | hand-written loop wall s (CPU s) | trainwise loop wall s (CPU s) | "
          "**throughput ratio** (goal ≥ 0.97) | range |")
    print("|---|---|---|---|---|---|")
    print(f"| {precision} | {a.steps} | {med([x['loop_wall'] for x in hw]):.2f} ({med([x['loop_cpu'] for x in hw]):.2f}) | "
          f"{med([x['loop_wall'] for x in tw]):.2f} ({med([x['loop_cpu'] for x in tw]):.2f}) | "
          f"**{med(ratios):.3f}** | {min(ratios):.3f}–{max(ratios):.3f} |")


def study_table(data, a, device) -> None:
    counts = [int(w) for w in a.workers.split(",")]
    cfg = StudyConfig(name="gpu_share", dataset={"name": "synthetic", "synthetic": {
                          "n_train": 4000, "n_test": 500, "size": 16, "channels": 3}},
                      model={"name": "cnn", "width": 8}, optimizer={"lr": 0.05},
                      train={"epochs": a.study_epochs, "batch_size": 64, "threads": 1, "device": str(device),
                             "eval_every": 10**9},
                      budgets=[0.5, 1.0], seeds=[0, 1, 2, 3])
    walls: dict[int, list[float]] = {n: [] for n in counts}
    trial: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            for n in counts[r % len(counts):] + counts[:r % len(counts)]:
                threads = torch.get_num_threads()
                t0 = time.perf_counter()
                rows = run_study_quiet(cfg, Path(tmp) / f"{n}-{r}", n)
                walls[n].append(time.perf_counter() - t0)
                torch.set_num_threads(threads)
                trial[n].append(sum(x["metrics"]["wall_time"] for x in rows))
                print(f"  repeat {r} workers {n}: {walls[n][-1]:.1f}s (sum of trial train times {trial[n][-1]:.1f}s)",
                      flush=True)
    one = med(walls[counts[0]])
    print("\n| workers | median study wall s | ratio to 1 worker | runs (s) | Σ trial train time s |")
    print("|---|---|---|---|---|")
    for n in counts:
        print(f"| {n} | {med(walls[n]):.1f} | {med(walls[n]) / one:.2f} | "
              f"{', '.join(f'{x:.1f}' for x in walls[n])} | {med(trial[n]):.1f} |")


def run_study_quiet(cfg, out: Path, workers: int):
    from trainwise.study.runner import run_study

    return run_study(cfg, out, workers=workers, executor="processes" if workers > 1 else "local", progress=False,
                     echo=lambda *x: None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="cnn")
    p.add_argument("--width", type=int, default=None, help="model width (cnn default 16)")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", default=None, help="worker counts of the study table (default 1,4 on a GPU, 1,2 on CPU)")
    p.add_argument("--study-epochs", type=int, default=4)
    p.add_argument("--parts", default="precision,loop,study")
    p.add_argument("--only", default="", help="precision variants to run, comma-separated (default all)")
    p.add_argument("--loop-precision", default=None, help="precision of the loop table (default bf16 on CUDA, fp32 on CPU)")
    a = p.parse_args()
    if a.width is None and a.model == "cnn":
        a.width = 16
    device = pick_device(a.device)
    a.workers = a.workers or ("1,4" if device.type == "cuda" else "1,2")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; {a.model} on {a.dataset}, batch {a.batch}, {a.steps} steps, "
          f"{a.repeats} repeats")
    data = load_dataset(DatasetConfig(name=a.dataset)).to(device)
    parts = a.parts.split(",")
    if "precision" in parts:
        print("\n## precision, channels-last, compile")
        precision_table(data, a, device)
    if "loop" in parts:
        print("\n## trainwise vs a hand-written loop")
        loop_table(data, a, device)
    if "study" in parts:
        print(f"\n## a study of 8 small trials, workers {a.workers}")
        study_table(data, a, device)


if __name__ == "__main__":
    main()
