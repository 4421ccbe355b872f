"""Writes golden/classification_before_task_seam.json (run from the repository root at the commit
before the task seam, e4d530e: PYTHONPATH=src python tests/golden/golden_classification.py OUT.json)."""
import json, sys, glob
from trainwise.config_load import load_config
from trainwise.study.config import StudyConfig
from trainwise.config import TrialConfig
from trainwise.train import train
out = {"trial_ids": {}, "results": {}}
for p in sorted(glob.glob("examples/*.yaml")):
    try:
        cfg = load_config(p, StudyConfig)
    except Exception as e:
        print("skip", p, e); continue
    out["trial_ids"][p] = [t.config_hash() for t in cfg.trials()]
RUNS = {
  "uniform_ce": {"dataset": {"name": "digits", "val_fraction": 0.1}, "model": {"name": "mlp", "hidden": 32}, "train": {"epochs": 2, "batch_size": 64, "threads": 1}},
  "importance_mixup": {"dataset": {"name": "digits"}, "model": {"name": "cnn", "width": 8}, "sampler": {"name": "importance"}, "augment": [{"name": "mixup"}], "train": {"epochs": 2, "batch_size": 64, "threads": 1}, "target_accuracy": 0.5},
  "sb_bce_infobatch": {"dataset": {"name": "digits", "val_fraction": 0.2}, "model": {"name": "mlp", "hidden": 16}, "loss": "bce", "sampler": "infobatch", "train": {"epochs": 3, "batch_size": 32, "threads": 1}},
  "selective_backprop": {"dataset": {"name": "digits"}, "model": {"name": "linear"}, "sampler": "selective-backprop", "train": {"epochs": 2, "batch_size": 32, "threads": 1}},
}
for name, d in RUNS.items():
    cfg = TrialConfig(**d)
    r = train(cfg, progress=False)
    r.pop("wall_time"); r.pop("cpu_time")
    if r.get("time_to_target") is not None: r["time_to_target"] = "reached"
    out["results"][name] = {"config": d, "trial_id": cfg.config_hash(), "result": r}
json.dump(out, open(sys.argv[1], "w"), indent=1)
