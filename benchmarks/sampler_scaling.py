"""Per-batch cost of each sampler's sampling + feedback as the dataset grows (N = 1e4, 1e6, 1e7).

For each sampler this script runs whole budget epochs (b = 0.5, batch 128) of
``begin_epoch`` + ``next_batch`` + ``feedback`` against a stand-in for the model: the
``scorer`` returns random losses for the requested indices (the real scorer's forward pass is
model compute, counted as such by the training loop, not sampling overhead) and feedback gets
random losses and p(true). The per-batch cost is the epoch's time divided by its batches, so
once-per-epoch work (exponential keys, permutations, pruning) is amortised as in training.
Score-based samplers start with every sample seen once (random scores), as mid-training.

It reports the per-batch cost, its ratio to the cost at N = 1e4 (goal ≤ 2× at 1e7) and its
fraction of one training step of the benchmark ``cnn`` (width 16, batch 128, 1×28×28, forward +
backward + SGD step; goal ≤ 5%), timed in the same process. Times are the process's CPU time
(``time.process_time``, one torch thread by default), not wall time: the machine is shared, and
a long epoch's wall time would mostly measure the other tenants' time slices. Medians over
repeats; one epoch at N = 1e7 (tens of thousands of batches).

    python benchmarks/sampler_scaling.py [--sizes 10000 1000000 10000000] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from trainwise.budget import Budget
from trainwise.models import build_model
from trainwise.sampling import SAMPLERS, SamplerContext

SPECS = {
    "uniform": "uniform",
    "p-sgd": "p-sgd",
    "c-sgd": "c-sgd",
    "selective-backprop": "selective-backprop",
    "importance": {"name": "importance", "tau_th": 0.0},  # always on: the weighted path is timed
    "importance-gradnorm": {"name": "importance", "tau_th": 0.0, "score": "gradnorm-ub"},
    "infobatch": "infobatch",
}
BATCH, FRACTION, CLASSES = 128, 0.5, 10


def make(spec, n: int):
    labels = torch.randint(0, CLASSES, (n,), generator=torch.Generator().manual_seed(1))
    ctx = SamplerContext(Budget(5, BATCH, n, FRACTION), 0, labels, torch.device("cpu"))
    s = SAMPLERS.build(spec, ctx)
    if getattr(s, "wants_feedback", False):  # mid-training: every sample has a score
        g = torch.Generator().manual_seed(2)
        s.feedback(torch.arange(n), torch.rand(n, generator=g) * 2, torch.rand(n, generator=g))
    return s


def epoch_cost(s, epoch: int, gen: torch.Generator) -> float:
    """Seconds per batch of one epoch of sampling + feedback."""

    def scorer(idx, probs=False):
        loss = torch.rand(len(idx), generator=gen) * 2
        p = torch.rand(len(idx), generator=gen)
        return (loss, p, torch.full((len(idx), CLASSES), 1 / CLASSES)) if probs else (loss, p)

    t = time.process_time()
    steps = s.begin_epoch(epoch)
    for i in range(steps):
        sel = s.next_batch(i, scorer)
        if getattr(s, "wants_feedback", False):
            s.feedback(sel.idx, torch.rand(len(sel.idx), generator=gen), torch.rand(len(sel.idx), generator=gen))
    return (time.process_time() - t) / steps


def cnn_step_time(repeats: int) -> float:
    model = build_model("cnn", (1, 28, 28), CLASSES, torch.zeros(1), torch.ones(1), width=16)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.rand(BATCH, 1, 28, 28), torch.randint(0, CLASSES, (BATCH,))
    times = []
    for _ in range(repeats + 3):
        t = time.process_time()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.process_time() - t)
    return statistics.median(times[3:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000, 10_000_000])
    ap.add_argument("--samplers", nargs="+", default=list(SPECS), choices=list(SPECS))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    step = cnn_step_time(20)
    print(f"cnn training step (batch {BATCH}, 1x28x28, width 16): {step * 1e3:.1f} ms (median of 20)")
    print(f"sampling + feedback per batch, b = {FRACTION}, median over repeats "
          f"(epochs: 20 at 1e4, 3 at 1e6, 1 at 1e7)\n")
    print(f"| sampler | {' | '.join(f'N = {n:.0e} µs/batch' for n in args.sizes)} | "
          f"growth {args.sizes[0]:.0e}→{args.sizes[-1]:.0e} | % of a cnn step at {args.sizes[-1]:.0e} |")
    print("|---|" + "---|" * (len(args.sizes) + 2))
    for name in args.samplers:
        costs = []
        for n in args.sizes:
            s, gen = make(SPECS[name], n), torch.Generator().manual_seed(3)
            reps = 20 if n <= 10_000 else 3 if n <= 1_000_000 else 1
            costs.append(statistics.median(epoch_cost(s, e, gen) for e in range(reps)))
            del s
        cells = " | ".join(f"{c * 1e6:.0f}" for c in costs)
        print(f"| {name} | {cells} | {costs[-1] / costs[0]:.2f}× | {costs[-1] / step * 100:.2f}% |", flush=True)


if __name__ == "__main__":
    main()
