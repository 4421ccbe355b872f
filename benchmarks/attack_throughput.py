"""PGD-10 throughput on the benchmark CNN, as a ratio to its physical floor.

PGD with 10 steps needs 10 forward + backward passes of the batch to the input; everything else
(random start, sign, projection, clipping) is overhead. This script times, interleaved in one
process, on the same batch of Fashion-MNIST-shaped inputs (1×28×28, 10 classes):

  pgd     trainwise.robust.pgd(model, x, y, ε=0.1, steps=10)  (eval mode, parameters frozen)
  floor   10 × [forward, cross-entropy, ∂loss/∂x] in eval mode with parameters frozen
  fb      10 × [forward, cross-entropy, loss.backward()] with parameter gradients (a training-style
          forward+backward, for reference)

and reports images/s and the ratios floor/pgd (goal ≥ 0.9) and fb/pgd, medians over repeats.

    python benchmarks/attack_throughput.py [--batch 256] [--width 16] [--repeats 7] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from trainwise.models import build_model
from trainwise.robust.attacks import attack_mode, pgd


def floor_passes(model, x, y, steps: int) -> None:
    with attack_mode(model):
        for _ in range(steps):
            xi = x.detach().requires_grad_(True)
            loss = F.cross_entropy(model(xi), y, reduction="sum")
            torch.autograd.grad(loss, xi)


def full_passes(model, x, y, steps: int) -> None:
    model.eval()
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model("cnn", (1, 28, 28), 10, torch.tensor([0.286]), torch.tensor([0.353]), width=args.width)
    x = torch.rand(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))
    gen = torch.Generator().manual_seed(0)
    runs = {
        "pgd": lambda: pgd(model, x, y, 0.1, steps=args.steps, gen=gen),
        "floor": lambda: floor_passes(model, x, y, args.steps),
        "fb": lambda: full_passes(model, x, y, args.steps),
    }
    for fn in runs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cnn width {args.width}, "
          f"batch {args.batch}, {args.steps} steps, {args.repeats} repeats (medians)")
    for k in runs:
        print(f"  {k:6s} {med[k] * 1000:8.1f} ms   {args.batch / med[k]:8.0f} images/s")
    print(f"PGD-{args.steps} / floor (10 input-gradient passes) = {med['floor'] / med['pgd']:.3f}   (goal ≥ 0.9)")
    print(f"PGD-{args.steps} / 10 training-style forward+backward passes = {med['fb'] / med['pgd']:.3f}")


if __name__ == "__main__":
    main()
