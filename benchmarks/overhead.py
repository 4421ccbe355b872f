"""Training-loop overhead: trainwise's uniform regimen vs a minimal hand-written PyTorch loop.

Same model (cnn), data (Fashion-MNIST, or digits with --dataset digits), batch size, number of
optimizer steps, optimizer and linear LR schedule; one final test evaluation in both. The two
run alternately in one process, several repeats; the figure is the median throughput ratio
trainwise / hand-written (goal >= 0.97).

    python benchmarks/overhead.py [--steps 400] [--repeats 5] [--dataset fashion-mnist]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from trainwise.budget import lr_at
from trainwise.data import load_dataset
from trainwise.evaluate import evaluate
from trainwise.models import build_model
from trainwise.study.config import DatasetConfig, TrialConfig
from trainwise.train import train


def hand_written(data, steps: int, batch: int, width: int, seed: int) -> float:
    """The loop a user would write by hand: randperm epochs, index, forward, CE, backward, step."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    mean, std = data.channel_stats()
    model = build_model("cnn", data.input_shape, data.num_classes, mean, std, width=width)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(seed)
    perm, pos = torch.randperm(data.n_train, generator=g), 0
    model.train()
    for step in range(steps):
        if pos + batch > data.n_train:
            perm, pos = torch.randperm(data.n_train, generator=g), 0
        idx = perm[pos : pos + batch]
        pos += batch
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, 0.05)
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    evaluate(model, data.x_test, data.y_test)
    return time.perf_counter() - t0


def with_trainwise(data, steps: int, batch: int, width: int, seed: int) -> float:
    epochs = 1
    spe = -(-data.n_train // batch)
    while epochs * spe < steps:
        epochs += 1
    budget = steps / (epochs * spe)
    cfg = TrialConfig(dataset={"name": data.name}, model={"name": "cnn", "width": width},
                      optimizer={"lr": 0.05}, train={"epochs": epochs, "batch_size": batch, "eval_every": 10**9},
                      budget=budget, seed=seed)
    t0 = time.perf_counter()
    r = train(cfg, progress=False, data=data)
    elapsed = time.perf_counter() - t0
    assert r["steps"] == steps, (r["steps"], steps)
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    data = load_dataset(DatasetConfig(name=a.dataset))
    # the budget fraction must give exactly --steps: pick steps a multiple that floor() keeps
    with_trainwise(data, 20, a.batch, a.width, 0)  # warm-up (allocator, kernels)
    hand_written(data, 20, a.batch, a.width, 0)
    ratios, hw, tw = [], [], []
    for r in range(a.repeats):
        h = hand_written(data, a.steps, a.batch, a.width, r)
        t = with_trainwise(data, a.steps, a.batch, a.width, r)
        hw.append(h)
        tw.append(t)
        ratios.append(h / t)
        print(f"repeat {r}: hand-written {h:.2f}s  trainwise {t:.2f}s  throughput ratio {h / t:.3f}", flush=True)
    print(f"{a.dataset}, cnn width {a.width}, batch {a.batch}, {a.steps} steps, threads {torch.get_num_threads()}")
    print(f"median hand-written {statistics.median(hw):.2f}s, trainwise {statistics.median(tw):.2f}s")
    print(f"median throughput ratio trainwise / hand-written: {statistics.median(ratios):.3f} (goal >= 0.97)")


if __name__ == "__main__":
    main()
