"""Wall-time speed-up of Selective Backprop over uniform sampling at the same number of epochs.

Both train the benchmark ``cnn`` (width 16) on Fashion-MNIST with the example's settings (SGD
lr 0.05, momentum 0.9, wd 5e-4, linear schedule, batch 128) for E epochs, i.e. E forward passes
over the training set:

  uniform  budget 1.0: E epochs of forward + backward on every sample
  SB       every sample forwarded (scored) E times, only the kept ones backpropagated (β = 3)

SB's run length is set in optimizer steps, so the script first calibrates: one SB run at
budget 1/(β+1) measures how many scoring passes it makes, and the budget is rescaled to give E
passes (the kept fraction drifts below 1/(β+1) as the losses fall, so the naive budget
over-forwards). Then uniform and SB runs alternate ``--repeats`` times; the script reports the
median training wall time (evaluation excluded), the median process CPU time of the whole run
(more stable on a shared machine), the passes SB made, and the final test accuracy of each
(mean over repeats; seeds differ per repeat). Goal: ≥ 1.3× at equal accuracy (±0.3 points).

    python benchmarks/selective_backprop.py [--limit-per-class 1000] [--epochs 5] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from trainwise.data import load_dataset
from trainwise.study.config import DatasetConfig, TrialConfig
from trainwise.train import train


def config(sampler, budget: float, seed: int, epochs: int, limit: int | None) -> TrialConfig:
    return TrialConfig(
        dataset={"name": "fashion-mnist", "limit_per_class": limit}, model={"name": "cnn", "width": 16},
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
        schedule={"name": "linear"}, sampler=sampler, budget=budget, seed=seed,
        train={"epochs": epochs, "batch_size": 128, "eval_every": 10**9, "threads": 1})


def run(cfg: TrialConfig, data) -> dict:
    t = time.process_time()
    r = train(cfg, progress=False, data=data)
    r["cpu_time"] = time.process_time() - t
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-per-class", type=int, default=1000, help="stratified training subset (0 = all 60k)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--beta", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    limit = args.limit_per_class or None
    data = load_dataset(DatasetConfig(name="fashion-mnist", limit_per_class=limit))
    n = data.n_train
    sb = {"name": "selective-backprop", "beta": args.beta}

    def passes(r: dict) -> float:  # scoring forwards per training sample
        return (r["samples_forwarded"] - r["samples_backpropagated"]) / n

    f0 = 1 / (args.beta + 1)
    cal = run(config(sb, f0, 100, args.epochs, limit), data)
    f = min(1.0, f0 * args.epochs / passes(cal))
    print(f"N = {n}, {args.epochs} epochs; calibration: SB at budget {f0:.3f} made {passes(cal):.2f} passes "
          f"-> budget {f:.3f}", flush=True)
    rows = {"uniform": [], "selective-backprop": []}
    for rep in range(args.repeats):
        rows["uniform"].append(run(config("uniform", 1.0, rep, args.epochs, limit), data))
        rows["selective-backprop"].append(run(config(sb, f, rep, args.epochs, limit), data))
        for k, rs in rows.items():
            r = rs[-1]
            print(f"  repeat {rep} {k}: acc {r['test_acc'] * 100:.2f}%  wall {r['wall_time']:.1f}s  "
                  f"cpu {r['cpu_time']:.1f}s  steps {r['steps']}  passes {passes(r) if k != 'uniform' else args.epochs:.2f}",
                  flush=True)
    med = {k: (statistics.median(r["wall_time"] for r in rs), statistics.median(r["cpu_time"] for r in rs),
               statistics.fmean(r["test_acc"] for r in rs) * 100) for k, rs in rows.items()}
    print("\n| sampler | epochs (forward passes) | backprops | test acc % | train wall s | run CPU s |")
    print("|---|---|---|---|---|---|")
    for k, rs in rows.items():
        ep = statistics.fmean(passes(r) for r in rs) if k != "uniform" else args.epochs
        bp = statistics.fmean(r["samples_backpropagated"] for r in rs)
        w, c, a = med[k]
        print(f"| {k} | {ep:.2f} | {bp:.0f} | {a:.2f} | {w:.1f} | {c:.1f} |")
    (wu, cu, au), (ws, cs, as_) = med["uniform"], med["selective-backprop"]
    print(f"\nspeed-up SB/uniform: wall {wu / ws:.2f}×, CPU {cu / cs:.2f}×; accuracy difference "
          f"{as_ - au:+.2f} points (goal ≥ 1.3× at ±0.3 points)")


if __name__ == "__main__":
    main()
