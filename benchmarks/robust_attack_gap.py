"""How much a weaker attack overstates robustness: the study's stored attack vs PGD on the same models.

For every finished trial of a study with a ``robustness:`` section, load its ``model.pt``, take the
same test subset the study attacked (``robust_metrics`` draws it from the trial seed), run PGD
(``--steps``, step 2.5·ε/steps, random start) at the study's radii, and print per regimen × budget
the mean robust accuracy under PGD next to the stored one (e.g. autoattack-lite), and their gap.

    python benchmarks/robust_attack_gap.py studies/robust_budget [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
from collections import defaultdict
from pathlib import Path

import torch

from trainwise.data import load_dataset
from trainwise.models import build_model
from trainwise.robust.evaluate import robust_accuracy
from trainwise.study.config import TrialConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", type=Path)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    db = sqlite3.connect(args.study / "results.db")
    rows = db.execute("SELECT trial_id, config, metrics FROM trials WHERE status = 'done'").fetchall()
    data, out = None, defaultdict(lambda: defaultdict(list))
    for tid, config, metrics in rows:
        cfg, m = TrialConfig(**json.loads(config)), json.loads(metrics)
        data = data or load_dataset(cfg.dataset)
        model = build_model(cfg.model.name, data.input_shape, data.num_classes, *data.channel_stats(),
                            **cfg.model.settings)
        model.load_state_dict(torch.load(args.study / "trials" / tid / "model.pt", weights_only=True))
        model.eval()
        rc = cfg.robustness
        gen = torch.Generator().manual_seed(10_000 + cfg.seed)
        idx = torch.randperm(len(data.x_test), generator=gen)[: rc.samples].sort().values
        x, y = data.x_test[idx], data.y_test[idx]
        for e in rc.eps:
            pgd = robust_accuracy(model, x, y, e, attack="pgd", norm=rc.norm, steps=args.steps, gen=gen)
            out[(cfg.regimen, cfg.budget)][e].append((pgd, m[f"robust_acc@{e:g}"]))
    stored = json.loads(rows[0][2])["robust_attack"]
    print(f"| regimen | budget | ε | PGD-{args.steps} acc % | {stored} acc % | gap (points) |")
    print("|---|---|---|---|---|---|")
    for (reg, b), per in sorted(out.items()):
        for e, pairs in sorted(per.items()):
            p, s = statistics.fmean(a for a, _ in pairs) * 100, statistics.fmean(c for _, c in pairs) * 100
            print(f"| {reg} | {b:g} | {e:g} | {p:.1f} | {s:.1f} | {p - s:+.1f} |")


if __name__ == "__main__":
    main()
