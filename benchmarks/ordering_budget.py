"""The results of docs/results/ordering_budget.md: batch orderers vs uniform at equal optimizer steps
and at equal forward+backward work (arXiv:2211.14395; ``examples/ordering_budget.yaml``).

Runs the study twice through the CLI's own runner (resuming whatever is stored): as written
(``train.budget_unit: steps``) into ``studies/ordering_budget_steps`` and with
``train.budget_unit: forward_backward`` into ``studies/ordering_budget_work``, then prints markdown
tables: final validation / test / train accuracy (mean ± sd over seeds), the paired difference to
uniform (seed by seed, 95% t interval), the work done (forward+backward, in uniform-step units),
and steps-to-target: the first evaluation at which the validation accuracy reaches each target,
and that point's work.

    python benchmarks/ordering_budget.py [--workers 2] [--targets 0.8 0.85] [--set train.eval_every=40]
"""

from __future__ import annotations

import argparse
import json
import statistics as st
from pathlib import Path

from trainwise.stats import paired
from trainwise.study.config import StudyConfig, load_config
from trainwise.study.runner import run_study

ROOT = Path(__file__).resolve().parent.parent


def history(out: Path, trial_id: str) -> list[dict]:
    lines = (out / "trials" / trial_id / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if x]


def work(m: dict, batch: int) -> float:
    """Forward+backward work in uniform training steps (a forward 1/3, a backward 2/3 per sample)."""
    return (m["samples_forwarded"] / 3 + 2 * m["samples_backpropagated"] / 3) / batch


def fmt(xs: list[float], scale: float = 100, digits: int = 2) -> str:
    xs = [x * scale for x in xs]
    return f"{st.mean(xs):.{digits}f} ± {st.stdev(xs) if len(xs) > 1 else 0:.{digits}f}"


def interval(d: dict) -> str:
    return f"{d['mean']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}]" if d["lo"] is not None else f"{d['mean']:+.2f}"


def table(out: Path, rows: list[dict], batch: int, targets: list[float]) -> str:
    by: dict[str, dict[int, dict]] = {}
    for r in rows:
        if r["status"] == "done":
            by.setdefault(r["regimen"], {})[r["seed"]] = r
    base = by.get("uniform", {})
    head = ["regimen", "seeds", "steps", "work (uniform steps)", "val acc %", "test acc %", "train acc %",
            "Δ test vs uniform (pts, 95% CI)", "Δ val vs uniform"]
    head += [f"steps to val ≥ {t:.0%} (work)" for t in targets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, seeds in sorted(by.items(), key=lambda kv: (kv[0] != "uniform", kv[0])):
        ms = [seeds[s]["metrics"] for s in sorted(seeds)]
        common = sorted(set(seeds) & set(base))
        if name != "uniform" and common:
            d = paired([seeds[s]["metrics"]["test_acc"] * 100 for s in common],
                       [base[s]["metrics"]["test_acc"] * 100 for s in common])
            dv = paired([seeds[s]["metrics"]["val_acc"] * 100 for s in common],
                        [base[s]["metrics"]["val_acc"] * 100 for s in common])
            delta, dval = interval(d), interval(dv)
        else:
            delta = dval = "—"
        cells = [name, str(len(ms)), f"{st.mean(m['steps'] for m in ms):.0f}",
                 f"{st.mean(work(m, batch) for m in ms):.0f}", fmt([m["val_acc"] for m in ms]),
                 fmt([m["test_acc"] for m in ms]), fmt([m["train_acc"] for m in ms]), delta, dval]
        for t in targets:
            hit = []
            for s in sorted(seeds):
                m = seeds[s]["metrics"]
                h = next((h for h in history(out, seeds[s]["trial_id"]) if h.get("val_acc", 0) >= t), None)
                if h is not None:
                    hit.append((h["step"], h["step"] * work(m, batch) / m["steps"]))
            cells.append(f"{st.mean(x[0] for x in hit):.0f} ({st.mean(x[1] for x in hit):.0f}), {len(hit)}/{len(ms)}"
                         if hit else f"0/{len(ms)} reached")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curves(out: Path, rows: list[dict], batch: int, path: Path) -> None:
    """Validation accuracy (mean over seeds) against optimizer steps and against work, per regimen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by: dict[str, list[dict]] = {}
    for r in rows:
        if r["status"] == "done":
            by.setdefault(r["regimen"], []).append(r)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, rs in sorted(by.items(), key=lambda kv: (kv[0] != "uniform", kv[0])):
        hs = [history(out, r["trial_id"]) for r in rs]
        n = min(len(h) for h in hs)
        steps = [hs[0][i]["step"] for i in range(n)]
        acc = [100 * st.mean(h[i]["val_acc"] for h in hs) for i in range(n)]
        per_step = st.mean(work(r["metrics"], batch) / r["metrics"]["steps"] for r in rs)
        axes[0].plot(steps, acc, marker=".", label=name)
        axes[1].plot([x * per_step for x in steps], acc, marker=".", label=name)
    axes[0].set_xlabel("optimizer steps")
    axes[1].set_xlabel("forward+backward work (uniform steps)")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel("validation accuracy % (mean of seeds)")
        ax.set_ylim(bottom=70)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "examples" / "ordering_budget.yaml"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--targets", type=float, nargs="+", default=[0.8, 0.85])
    ap.add_argument("--set", action="append", default=[], help="extra overrides, as trainwise study --set")
    ap.add_argument("--only", choices=["steps", "work"], help="run one arm only")
    args = ap.parse_args()
    for unit, arm in (("steps", "steps"), ("forward_backward", "work")):
        if args.only and args.only != arm:
            continue
        cfg = load_config(args.config, StudyConfig, [*args.set, f"train.budget_unit={unit}",
                                                     f"name=ordering_budget_{arm}"])
        out = ROOT / "studies" / cfg.name
        rows = run_study(cfg, out, workers=args.workers, progress=False, report=True)
        print(f"\n### {arm}: train.budget_unit = {unit} ({out})\n")
        print(table(out, rows, cfg.train.batch_size, args.targets))
        if arm == "steps":
            curves(out, rows, cfg.train.batch_size, out / "curves.png")
            print(f"\ncurves: {out / 'curves.png'}")


if __name__ == "__main__":
    main()
