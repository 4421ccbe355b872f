"""End to end from the CLI: real Fashion-MNIST (a stratified subset), and CIFAR-10 in its official
"python version" layout (fabricated here: no real CIFAR on the test machines) with preact-resnet18."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

from trainwise.cli import main

FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_fashion_mnist_trial_from_the_cli(tmp_path, capsys):
    if not FASHION.is_dir():
        pytest.fail("Fashion-MNIST missing: `make test` installs the Debian package dataset-fashion-mnist")
    cfg = dict(dataset={"name": "fashion-mnist", "limit_per_class": 100}, model={"name": "cnn", "width": 8},
               optimizer={"lr": 0.05}, train={"epochs": 5, "batch_size": 64, "eval_every": 1000},
               augment=[{"name": "crop-flip"}], budget=1.0)
    path = tmp_path / "fm.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["steps"] == 5 * 15  # floor(1000 / 64) = 15 full batches per epoch
    assert result["test_acc"] > 0.5  # 10 classes: chance is 0.1; evaluated on the full 10k test set


def write_cifar10(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, 8)
        # class-dependent brightness so that the net has something to learn
        data = np.clip(rng.normal(20 * labels[:, None], 10, (8, 3072)), 0, 255).astype(np.uint8)
        (folder / name).write_bytes(pickle.dumps({b"data": data, b"labels": labels.tolist()}, protocol=2))
    return root


def test_cifar10_with_preact_resnet_from_the_cli(tmp_path):
    cfg = dict(dataset={"name": "cifar10", "data_dir": str(write_cifar10(tmp_path / "data"))},
               model={"name": "preact-resnet18", "width": 4}, train={"epochs": 2, "batch_size": 8},
               augment=[{"name": "crop-flip", "pad": 4}], budget=1.0)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["steps"] == 2 * 5 and result["samples_backpropagated"] == 80
