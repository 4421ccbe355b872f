"""``probe.md`` and ``probe.png`` of the exhaustive order probe (arXiv:2211.14395): the spread of
test accuracy and loss over all orders of each epoch, where ``uniform`` and the greedy samplers
fall among them (percentiles), and whether an order's advantage persists into the next epoch
(Pearson r of test loss, as the reference's ``analysis_correlation.ipynb``, and Spearman ρ,
the correlation of ranks, between a kept prefix's result and its continuations')."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from ..io import atomic_write_bytes, atomic_write_text


@dataclass
class Marker:
    name: str
    test_loss: list[float]  # after each epoch
    test_acc: list[float]


def percentile(values: np.ndarray, x: float, higher_is_better: bool = True) -> float:
    """Percent of ``values`` that ``x`` beats (ties count half): 100 = better than every order."""
    below = (values < x).sum() if higher_is_better else (values > x).sum()
    return 100.0 * (below + 0.5 * (values == x).sum()) / len(values)


def persistence(prev_rows, rows) -> tuple[float, float, int]:
    """(Pearson r, Spearman ρ, pairs) between the test loss of each prefix's last epoch and the test
    loss of each of its continuations one epoch later."""
    before = {(tuple(p), o): loss for p, o, loss, _ in prev_rows}
    x = [before[(tuple(p[:-1]), p[-1])] for p, _, _, _ in rows]
    y = [loss for _, _, loss, _ in rows]
    if len(set(x)) < 2:
        return float("nan"), float("nan"), len(x)
    return float(stats.pearsonr(x, y)[0]), float(stats.spearmanr(x, y)[0]), len(x)


def plot(epochs: list[dict], markers: list[Marker]) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(epochs), figsize=(5.2 * len(epochs), 3.6), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for e, (ax, ep) in enumerate(zip(axes[0], epochs)):
        acc = np.array([r[3] for r in ep["rows"]]) * 100
        ax.hist(acc, bins=30, color="0.75")
        ax.axvline(np.median(acc), color="0.3", ls=":", label="median order")
        for i, m in enumerate(markers):
            if e < len(m.test_acc):
                ax.axvline(m.test_acc[e] * 100, color=colours[i % len(colours)], lw=2, label=m.name,
                           ls=("-", "--", "-.", (0, (1, 1)))[i % 4])
        ax.set_title(f"after {e + 1} epoch{'s' if e else ''}: {len(acc)} orders")
        ax.set_xlabel("test accuracy (%)")
        ax.set_ylabel("orders")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_report(out: Path, cfg, data, epochs: list[dict], markers: list[Marker], took: dict,
                 command: str = "") -> Path:
    k = cfg.batches
    names = ", ".join(data.classes) if data.classes else ", ".join(map(str, cfg.classes))
    lines = [f"# Order probe: {cfg.name}", "",
             f"{data.n_train} training images of {len(cfg.classes)} classes ({names}) of {cfg.dataset.name} "
             f"(training split only), {len(data.y_test)} test images of those classes; model {cfg.model.name} "
             f"{json.dumps(cfg.model.settings)}; {cfg.optimizer.name} lr {cfg.optimizer.lr} momentum "
             f"{cfg.optimizer.momentum}{' (Nesterov)' if cfg.optimizer.nesterov else ''} weight decay "
             f"{cfg.optimizer.weight_decay}, constant lr; batch {cfg.batch_size}: {k} batches, {cfg.orders} orders "
             f"per prefix; seed {cfg.seed}; no augmentation. Epoch e ≥ 2 continues from the best, the worst and "
             f"one order per {cfg.clusters} k-means clusters of test loss of epoch e − 1.", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += ["| epoch | orders | acc min | acc median | acc mean ± sd | acc max | loss min | loss median | "
              "loss max |", "|---|---|---|---|---|---|---|---|---|"]
    for e, ep in enumerate(epochs):
        acc = np.array([r[3] for r in ep["rows"]]) * 100
        loss = np.array([r[2] for r in ep["rows"]])
        lines.append(f"| {e + 1} | {len(acc)} | {acc.min():.2f} | {np.median(acc):.2f} | {acc.mean():.2f} ± "
                     f"{acc.std(ddof=1) if len(acc) > 1 else 0:.2f} | {acc.max():.2f} | {loss.min():.4f} | "
                     f"{np.median(loss):.4f} | {loss.max():.4f} |")
    lines += ["", "Where one run of each sampler falls among the probed orders of the same epoch (percentile: the "
              "share of orders it beats; 100 = better than all):", "",
              "| sampler | epoch | test acc (%) | acc percentile | test loss | loss percentile |",
              "|---|---|---|---|---|---|"]
    for m in markers:
        for e, ep in enumerate(epochs):
            if e >= len(m.test_acc):
                continue
            acc = np.array([r[3] for r in ep["rows"]])
            loss = np.array([r[2] for r in ep["rows"]])
            pct_acc, pct_loss = percentile(acc, m.test_acc[e]), percentile(loss, m.test_loss[e], False)
            lines.append(f"| {m.name} | {e + 1} | {m.test_acc[e] * 100:.2f} | {pct_acc:.1f} | "
                         f"{m.test_loss[e]:.4f} | {pct_loss:.1f} |")
    lines += ["", "`uniform` is the identity order of each epoch's split (one uniformly random order); the greedy "
              "samplers are the real training loop's, on the same subset, initial weights and optimizer "
              "(multi-attempt regroups the samples, so its epoch need not be one of the probed orders)."]
    if len(epochs) > 1:
        lines += ["", "Does an order's advantage persist? Correlation, over the rows of epoch e, between the test loss "
                  "of the row's prefix after epoch e − 1 and the row's test loss after epoch e:", "",
                  "| epochs | pairs | Pearson r | Spearman ρ | best of e − 1 vs median of e (acc %) |",
                  "|---|---|---|---|---|"]
        for e in range(1, len(epochs)):
            r, rho, n = persistence(epochs[e - 1]["rows"], epochs[e]["rows"])
            best = max(x[3] for x in epochs[e - 1]["rows"]) * 100
            med = float(np.median([x[3] for x in epochs[e]["rows"]])) * 100
            lines.append(f"| {e} → {e + 1} | {n} | {r:.3f} | {rho:.3f} | {best:.2f} vs {med:.2f} |")
    lines += ["", f"Probe jobs this run: {took['orders']} orders in {took['wall']:.1f} s wall, "
              f"{took['cpu']:.1f} s CPU inside the jobs ({cfg.threads} torch thread(s) per job).", "",
              "![test accuracy over orders](probe.png)", ""]
    summary = dict(took=took, epochs=[dict(orders=len(ep["rows"]), prefixes=len(ep["prefixes"]),
                                           test_acc=[r[3] for r in ep["rows"]], test_loss=[r[2] for r in ep["rows"]])
                                      for ep in epochs],
                   markers=[dict(name=m.name, test_acc=m.test_acc, test_loss=m.test_loss) for m in markers])
    atomic_write_text(out / "probe.json", json.dumps(summary))
    atomic_write_bytes(out / "probe.png", plot(epochs, markers))
    path = out / "probe.md"
    atomic_write_text(path, "\n".join(lines))
    return path
