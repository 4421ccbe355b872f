"""Helpers shared by tests (importable as ``helpers``: pytest puts tests/ on the path)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def trial_dict(**over) -> dict:
    """A tiny trial: synthetic 8x8 images, the linear model, one epoch."""
    d = dict(
        dataset={"name": "synthetic", "synthetic": {"n_train": 256, "n_test": 128, "size": 8}},
        model={"name": "linear"},
        optimizer={"name": "sgd", "lr": 0.1},
        train={"epochs": 2, "batch_size": 32},
        seed=0,
    )
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k] = {**d[k], **v}
        else:
            d[k] = v
    return d


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file under ``root``: to check nothing was changed."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out
