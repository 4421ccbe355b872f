"""Paired datasets: fashion-halves, synthetic pairs with several positives, group-wise validation
splits, per-view normalisation, and the user's paired arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from trainwise.config import DatasetConfig, TrialConfig
from trainwise.data import load_dataset
from trainwise.data.base import split_groups
from trainwise.data.paired import make_synthetic_paired
from trainwise.errors import DataError, TrainwiseError
from trainwise.train import train

REAL_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_halves_are_the_left_and_right_halves_of_each_image():
    from trainwise.data.fashion_mnist import load_fashion_mnist

    d = load_dataset(DatasetConfig(name="fashion-halves"))
    img = load_fashion_mnist()
    assert d.n_train == 60_000 and len(d.x_test) == 10_000 and d.views == ((1, 28, 14), (1, 28, 14))
    assert d.x_train.dtype == torch.uint8 and torch.equal(d.y_train, torch.arange(60_000))
    i = 12345
    assert torch.equal(d.x_train[i, :392].reshape(1, 28, 14), img.x_train[i, :, :, :14])
    assert torch.equal(d.x_train[i, 392:].reshape(1, 28, 14), img.x_train[i, :, :, 14:])
    mean, std = d.channel_stats()  # one mean/std per view channel, repeated over its pixels
    assert mean.shape == (784,) and len(set(mean[:392].tolist())) == 1 and len(set(std[392:].tolist())) == 1


def test_synthetic_pairs_share_view_a_within_a_group():
    d = make_synthetic_paired(n_train=60, n_test=30, size=8, positives=3)
    assert d.views == ((8,), (8,)) and d.y_train.tolist() == [i // 3 for i in range(60)]
    a, b = d.x_train[:, :8], d.x_train[:, 8:]
    assert torch.equal(a[0], a[2]) and not torch.equal(a[0], a[3]) and not torch.equal(b[0], b[1])


def test_a_validation_split_takes_whole_groups():
    d = make_synthetic_paired(n_train=300, n_test=30, positives=5)
    s = split_groups(d, 0.2, seed=1)
    val, tr = set(s.y_val.tolist()), set(s.y_train.tolist())
    assert len(val) == 12 and not val & tr and len(s.y_val) == 60 and len(s.y_train) == 240
    assert torch.equal(load_dataset(DatasetConfig(name="synthetic-paired", val_fraction=0.2)).y_val,
                       load_dataset(DatasetConfig(name="synthetic-paired", val_fraction=0.2)).y_val)  # seeded


def save_pairs(path: Path, n: int = 120, groups: bool = True) -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 4))
    arrays = dict(a_train=(rng.random((n, 1, 6, 6)) * 255).astype(np.uint8), b_train=z.astype(np.float32),
                  a_test=(rng.random((40, 1, 6, 6)) * 255).astype(np.uint8), b_test=rng.normal(size=(40, 4)).astype(np.float32))
    if groups:
        arrays |= dict(group_train=np.arange(n) // 2, group_test=np.arange(40) // 2)
    np.savez(path, **arrays)


def test_users_paired_arrays_load_as_rows_of_both_views_and_train(tmp_path):
    save_pairs(tmp_path / "p.npz")
    d = load_dataset(DatasetConfig(name="arrays", path=str(tmp_path / "p.npz")))
    raw = np.load(tmp_path / "p.npz")
    assert d.views == ((1, 6, 6), (4,)) and d.x_train.dtype == torch.float32 and d.x_train.shape == (120, 40)
    assert np.allclose(d.x_train[:, :36].numpy(), raw["a_train"].reshape(120, -1) / 255)
    assert np.allclose(d.x_train[:, 36:].numpy(), raw["b_train"]) and d.y_train.tolist()[:4] == [0, 0, 1, 1]
    cfg = TrialConfig(task="retrieval", dataset={"name": "arrays", "path": str(tmp_path / "p.npz")},
                      model={"name": "two-tower", "embed_dim": 8, "hidden": 16}, loss="max-of-hinges",
                      train={"epochs": 1, "batch_size": 20, "threads": 1})
    r = train(cfg, progress=False)
    assert r["steps"] == 6 and "test_rsum" in r


def test_paired_arrays_mistakes_are_one_clear_error(tmp_path):
    np.savez(tmp_path / "half.npz", a_train=np.zeros((4, 3), np.float32), b_train=np.zeros((4, 3), np.float32))
    with pytest.raises(DataError, match="no 'a_test'"):
        load_dataset(DatasetConfig(name="arrays", path=str(tmp_path / "half.npz")))
    np.savez(tmp_path / "uneven.npz", a_train=np.zeros((4, 3), np.float32), b_train=np.zeros((5, 3), np.float32),
             a_test=np.zeros((2, 3), np.float32), b_test=np.zeros((2, 3), np.float32))
    with pytest.raises(DataError, match="has 4 items but .* 5; give one view B per view A"):
        load_dataset(DatasetConfig(name="arrays", path=str(tmp_path / "uneven.npz")))
    save_pairs(tmp_path / "p.npz")
    cfg = TrialConfig(dataset={"name": "arrays", "path": str(tmp_path / "p.npz")}, model={"name": "mlp"})
    with pytest.raises(TrainwiseError, match="is paired .* set task: retrieval"):
        train(cfg, progress=False)


def test_fit_takes_paired_tensor_data_and_keeps_its_views(tmp_path):
    import trainwise

    data = make_synthetic_paired(n_train=200, n_test=100, size=8, positives=2)
    cfg = {"task": "retrieval", "model": {"name": "two-tower", "embed_dim": 8, "hidden": 16}, "loss": "max-of-hinges",
           "train": {"epochs": 1, "batch_size": 20, "threads": 1}}
    r = trainwise.fit(cfg, data=data, out=tmp_path / "run")
    assert r["steps"] == 10 and r["test_rsum"] > 0
    stored = load_dataset(DatasetConfig(name="arrays", path=str(next((tmp_path / "run" / "data").iterdir()))))
    assert stored.views == data.views and torch.equal(stored.x_train, data.x_train)
    assert torch.equal(stored.y_test, data.y_test)
