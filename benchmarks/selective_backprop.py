"""Selective Backprop against uniform sampling, three ways, on the same data and seeds.

Both train the benchmark ``cnn`` (width 16) on Fashion-MNIST with the example's settings (SGD
lr 0.05, momentum 0.9, wd 5e-4, linear schedule to final_lr, batch 128, drop_last) for E epochs.
SB primes its first budget epoch unselected (``prime_samples`` default), as the reference does.

  equal epochs  the SB paper's framing: uniform at budget 1.0 (E forward+backward passes) vs SB
                whose scoring forwards make E passes over the data (the budget is calibrated by
                one SB run first); SB backpropagates far fewer samples
  equal steps   both at budget ``--budget``: the same optimizer steps and samples backpropagated,
                SB pays (β+1)× the forwards (after priming)
  equal work    both at budget ``--budget`` with ``train.budget_unit: forward_backward`` (a forward
                costs 1/3, a backward 2/3 of a training step): SB's forwards cost it steps

Runs alternate ``--repeats`` times per comparison (seed = repeat). The table gives steps, samples
forwarded/backpropagated, test accuracy (mean over repeats), median training wall time
(evaluation excluded) and median process CPU time of the run (stable on a shared machine).

    python benchmarks/selective_backprop.py [--limit-per-class 1000] [--epochs 5] [--budget 0.3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from trainwise.data import load_dataset
from trainwise.study.config import DatasetConfig, TrialConfig
from trainwise.train import train


def config(sampler, budget: float, seed: int, epochs: int, limit: int | None, unit: str = "steps") -> TrialConfig:
    return TrialConfig(
        dataset={"name": "fashion-mnist", "limit_per_class": limit}, model={"name": "cnn", "width": 16},
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
        schedule={"name": "linear"}, sampler=sampler, budget=budget, seed=seed,
        train={"epochs": epochs, "batch_size": 128, "eval_every": 10**9, "threads": 1, "budget_unit": unit})


def run(cfg: TrialConfig, data) -> dict:
    t = time.process_time()
    r = train(cfg, progress=False, data=data)
    r["cpu_time"] = time.process_time() - t
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-per-class", type=int, default=1000, help="stratified training subset (0 = all 60k)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--budget", type=float, default=0.3, help="budget of the equal-steps and equal-work runs")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--beta", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    limit = args.limit_per_class or None
    data = load_dataset(DatasetConfig(name="fashion-mnist", limit_per_class=limit))
    n = data.n_train
    sb = {"name": "selective-backprop", "beta": args.beta}

    def passes(r: dict) -> float:  # forward passes over the training set (scoring + training)
        return r["samples_forwarded"] / n

    f0 = 1 / (args.beta + 1)
    cal = run(config(sb, f0, 100, args.epochs, limit), data)
    f = min(1.0, f0 * args.epochs / passes(cal))
    print(f"N = {n}, {args.epochs} epochs; calibration: SB at budget {f0:.3f} made {passes(cal):.2f} passes "
          f"-> budget {f:.3f} for {args.epochs}", flush=True)
    b, E = args.budget, args.epochs
    plans = {"equal epochs": [("uniform", 1.0, "steps"), (sb, f, "steps")],
             "equal steps": [("uniform", b, "steps"), (sb, b, "steps")],
             "equal work": [("uniform", b, "forward_backward"), (sb, b, "forward_backward")]}
    rows: dict[tuple[str, str], list[dict]] = {}
    for rep in range(args.repeats):
        for plan, runs in plans.items():
            for sampler, budget, unit in runs:
                name = sampler if isinstance(sampler, str) else "selective-backprop"
                r = run(config(sampler, budget, rep, E, limit, unit), data)
                rows.setdefault((plan, name), []).append(r)
                print(f"  repeat {rep} {plan:12s} {name:18s} budget {budget:.3f}: acc {r['test_acc'] * 100:.2f}%  "
                      f"steps {r['steps']}  wall {r['wall_time']:.1f}s  cpu {r['cpu_time']:.1f}s", flush=True)
    print("\n| comparison | sampler | steps | samples fwd | samples bwd | passes | test acc % | train wall s | run CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (plan, name), rs in rows.items():
        m = lambda k: statistics.fmean(r[k] for r in rs)  # noqa: E731
        print(f"| {plan} | {name} | {m('steps'):.0f} | {m('samples_forwarded'):.0f} | {m('samples_backpropagated'):.0f} "
              f"| {statistics.fmean(passes(r) for r in rs):.2f} | {m('test_acc') * 100:.2f} "
              f"| {statistics.median(r['wall_time'] for r in rs):.1f} | {statistics.median(r['cpu_time'] for r in rs):.1f} |")
    for plan in plans:
        u, s = rows[(plan, "uniform")], rows[(plan, "selective-backprop")]
        cu, cs = (statistics.median(r["cpu_time"] for r in x) for x in (u, s))
        da = (statistics.fmean(r["test_acc"] for r in s) - statistics.fmean(r["test_acc"] for r in u)) * 100
        print(f"{plan}: SB - uniform = {da:+.2f} points; CPU time uniform/SB = {cu / cs:.2f}x")


if __name__ == "__main__":
    main()
