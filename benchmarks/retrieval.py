"""Cost of max-of-hinges over sum-of-hinges in a training step, and of a 1K x 1K evaluation.

Step: one training step of the fashion-halves two-tower model (MLP encoders 392-512-128, the
``examples/vsepp_halves.yaml`` model) on a random batch of real pairs: forward, loss, backward,
Adam step with gradient-norm clipping 2, exactly as ``train.py`` takes it (``tasks.Retrieval``).
SH and MH steps alternate in one process on the same batches; the ratio MH / SH of the medians
over repeats is the overhead (goal <= 1.05), in process CPU time and in wall time.

Evaluation: Recall@1/5/10 both ways, median/mean rank and R-sum of 1,000 pairs (one COCO-1K
fold): ``retrieval_metrics`` on given embeddings (the ranking, goal <= 0.1 s), and
``evaluate_retrieval`` including embedding the 1,000 pairs with the model.

    python benchmarks/retrieval.py [--batch 128] [--repeats 15] [--steps 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from trainwise.accel import Accel
from trainwise.config import DatasetConfig, TrainSettings
from trainwise.data import load_dataset
from trainwise.data.loader import rows
from trainwise.models import build_model
from trainwise.retrieval import LOSSES, evaluate_retrieval, retrieval_metrics


def timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--steps", type=int, default=20, help="training steps per timed block")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = load_dataset(DatasetConfig(name="fashion-halves"))
    mean, std = data.channel_stats()
    model = build_model("two-tower", data.input_shape, 0, mean, std, embed_dim=128, hidden=512, depth=1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    accel = Accel(TrainSettings(), torch.device("cpu"))
    g = torch.Generator().manual_seed(1)
    batches = [rows(data.x_train, torch.randint(0, data.n_train, (args.batch,), generator=g), "cpu")
               for _ in range(args.steps)]

    def block(name: str):
        def run():
            for x in batches:
                e = model(x)
                accel.step(LOSSES[name](e[:, 0], e[:, 1], 0.2).sum(), opt, 2.0)
        return run

    block("sum-of-hinges")(), block("max-of-hinges")()  # warm-up
    times = {"sum-of-hinges": [], "max-of-hinges": []}
    for _ in range(args.repeats):
        for name in times:  # alternate: both see the same machine load
            times[name].append(timed(block(name)))
    print(f"training step, batch {args.batch}, {args.threads} thread(s), median of {args.repeats} x {args.steps} steps:")
    med = {n: (statistics.median(w for w, _ in t) / args.steps, statistics.median(c for _, c in t) / args.steps)
           for n, t in times.items()}
    for n, (w, c) in med.items():
        print(f"  {n:14s} {w * 1e3:7.2f} ms wall  {c * 1e3:7.2f} ms CPU")
    print(f"  MH / SH: {med['max-of-hinges'][0] / med['sum-of-hinges'][0]:.3f} wall, "
          f"{med['max-of-hinges'][1] / med['sum-of-hinges'][1]:.3f} CPU (goal <= 1.05)")

    x, groups = data.x_test[:1000], data.y_test[:1000]
    model.eval()
    with torch.no_grad():
        e = model(rows(x, torch.arange(1000), "cpu"))
    a, b = e[:, 0].contiguous(), e[:, 1].contiguous()
    rank_t = [timed(lambda: retrieval_metrics(a, b, groups)) for _ in range(args.repeats)]
    full_t = [timed(lambda: evaluate_retrieval(model, x, groups)) for _ in range(args.repeats)]
    print("1K x 1K evaluation (R@1/5/10 both ways, medr, meanr, R-sum), median:")
    print(f"  ranking only      {statistics.median(w for w, _ in rank_t) * 1e3:7.2f} ms wall  "
          f"{statistics.median(c for _, c in rank_t) * 1e3:7.2f} ms CPU (goal <= 100 ms)")
    print(f"  with embedding    {statistics.median(w for w, _ in full_t) * 1e3:7.2f} ms wall  "
          f"{statistics.median(c for _, c in full_t) * 1e3:7.2f} ms CPU")


if __name__ == "__main__":
    main()
