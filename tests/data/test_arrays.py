"""dataset.name: arrays — .npz files and .npy folders, layouts, dtypes, memory-mapping, errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from trainwise.data import fingerprint, load_dataset, load_raw
from trainwise.data.arrays import is_mapped
from trainwise.study.config import DatasetConfig
from helpers import load_error


def images(n, seed=0, layout="NCHW", dtype=np.uint8):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 3, 6, 5), dtype=np.uint8)
    if layout == "NHWC":
        x = x.transpose(0, 2, 3, 1).copy()
    return x if dtype == np.uint8 else (x / 255).astype(dtype)


def labels(n, c=3):
    return np.arange(n) % c


def split(**over):
    d = dict(x_train=images(12), y_train=labels(12), x_test=images(6, 1), y_test=labels(6))
    return {**d, **over}


def save_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def save_folder(path: Path, **arrays) -> Path:
    path.mkdir()
    for k, v in arrays.items():
        np.save(path / f"{k}.npy", v)
    return path


def cfg(path, **kw) -> DatasetConfig:
    return DatasetConfig(name="arrays", path=str(path), **kw)


def test_npz_round_trip(tmp_path):
    arrays = split()
    d = load_raw(cfg(save_npz(tmp_path / "d.npz", **arrays)))
    assert d.x_train.dtype == torch.uint8 and d.x_train.shape == (12, 3, 6, 5)
    assert torch.equal(d.x_test, torch.from_numpy(arrays["x_test"]))
    assert d.y_train.dtype == torch.int64 and d.y_train.tolist() == labels(12).tolist()
    assert d.num_classes == 3 and d.classes == ["0", "1", "2"]
    again = load_raw(cfg(tmp_path / "d.npz"))
    assert fingerprint(again) == fingerprint(d)
    arrays["x_test"][2, 0, 0, 0] ^= 1
    assert fingerprint(load_raw(cfg(save_npz(tmp_path / "e.npz", **arrays)))) != fingerprint(d)


def test_nhwc_float_and_grayscale_and_tabular(tmp_path):
    nhwc = split(x_train=images(12, layout="NHWC"), x_test=images(6, 1, layout="NHWC"))
    d = load_raw(cfg(save_npz(tmp_path / "a.npz", **nhwc)))
    assert d.x_train.shape == (12, 3, 6, 5) and torch.equal(d.x_train, torch.from_numpy(images(12)))
    fl = split(x_train=images(12, dtype=np.float64), x_test=images(6, 1, dtype=np.float64))
    d = load_raw(cfg(save_npz(tmp_path / "b.npz", **fl)))
    assert d.x_train.dtype == torch.float32 and float(d.x_train.max()) <= 1
    gray = split(x_train=images(12)[:, 0], x_test=images(6, 1)[:, 0])
    assert load_raw(cfg(save_npz(tmp_path / "c.npz", **gray))).x_train.shape == (12, 1, 6, 5)
    rng = np.random.default_rng(0)
    tab = split(x_train=rng.normal(0, 100, (12, 4)), x_test=rng.normal(0, 100, (6, 4)))
    d = load_raw(cfg(save_npz(tmp_path / "t.npz", **tab)))
    assert d.x_train.dtype == torch.float32 and d.x_train.shape == (12, 4)
    text = split(y_train=np.array(["b", "a", "c"] * 4), y_test=np.array(["a", "b"] * 3))
    d = load_raw(cfg(save_npz(tmp_path / "s.npz", **text)))
    assert d.classes == ["a", "b", "c"] and d.y_train[:3].tolist() == [1, 0, 2]


def test_x_y_with_test_fraction(tmp_path):
    path = save_npz(tmp_path / "xy.npz", x=images(30), y=labels(30))
    d = load_raw(cfg(path, test_fraction=0.2, split_seed=3))
    assert torch.bincount(d.y_test).tolist() == [2, 2, 2] and len(d.x_train) == 24
    assert torch.equal(load_raw(cfg(path, test_fraction=0.2, split_seed=3)).x_test, d.x_test)
    s = load_dataset(cfg(path, test_fraction=0.2, val_fraction=0.25))
    assert len(s.x_val) == 6 and len(s.x_train) == 18


def test_npy_folder_memory_and_mmap(tmp_path):
    arrays = split(x_train=images(12, dtype=np.float32), x_test=images(6, 1, dtype=np.float32))
    folder = save_folder(tmp_path / "npy", **arrays)
    mem = load_raw(cfg(folder, storage="memory"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not writable" warning from torch
        mapped = load_raw(cfg(folder, storage="mmap"))
    assert torch.equal(mem.x_train, mapped.x_train) and fingerprint(mem) == fingerprint(mapped)
    assert mapped.x_train.dtype == torch.float32
    assert mapped.x_train[[0, 3]].shape == (2, 3, 6, 5)
    mapped.x_train[0] += 0  # writable (copy-on-write): the file is never changed
    assert np.array_equal(np.load(folder / "x_train.npy"), arrays["x_train"])

    nhwc = save_folder(tmp_path / "nhwc", **split(x_train=images(12, layout="NHWC"), x_test=images(6, 1,
                                                                                                 layout="NHWC")))
    m = load_raw(cfg(nhwc, storage="mmap"))
    assert m.x_train.shape == (12, 3, 6, 5) and torch.equal(m.x_train, torch.from_numpy(images(12)))


def test_mmap_array_is_not_copied(tmp_path, monkeypatch):
    from trainwise.data import arrays as mod

    folder = save_folder(tmp_path / "npy", **split())
    seen = []
    real = mod.make_data
    monkeypatch.setattr(mod, "make_data", lambda *a, **k: seen.append(a) or real(*a, **k))
    load_raw(cfg(folder, storage="mmap"))
    assert is_mapped(seen[0][1]) and is_mapped(seen[0][3])
    # auto maps only large inputs; an .npz member is read into memory (apply_storage maps it if asked)
    seen.clear()
    load_raw(cfg(folder))
    load_raw(cfg(save_npz(tmp_path / "m.npz", **split()), storage="mmap"))
    assert not is_mapped(seen[0][1]) and not is_mapped(seen[1][1])


def test_errors(tmp_path):
    def npz(name, **arrays):
        return cfg(save_npz(tmp_path / f"{name}.npz", **arrays))

    assert "does not exist" in load_error(cfg(tmp_path / "none.npz"))
    a = split()
    del a["y_test"]
    msg = load_error(npz("missing", **a))
    assert "'y_test'" in msg and "found: x_test, x_train, y_train" in msg
    assert "test_fraction" in load_error(npz("xy", x=images(4), y=labels(4)))
    assert "remove dataset.test_fraction" in load_error(cfg(save_npz(tmp_path / "tf.npz", **split()), test_fraction=0.2))
    assert "integer class indices" in load_error(npz("float", **split(y_train=labels(12) + 0.5)))
    assert "not negative" in load_error(npz("neg", **split(y_train=labels(12) - 1)))
    msg = load_error(npz("range", **split(y_test=labels(6) + 5)))
    assert "y_test" in msg and "0..2" in msg
    nan = images(12, dtype=np.float32)
    nan[4, 0, 0, 0] = np.nan
    assert "image 4 holds NaN" in load_error(npz("nan", **split(x_train=nan, x_test=images(6, dtype=np.float32))))
    tab = np.ones((12, 3))
    tab[2, 1] = np.inf
    assert "sample 2 holds NaN or infinity" in load_error(npz("inf", **split(x_train=tab, x_test=np.ones((6, 3)))))
    assert "outside [0, 1]" in load_error(npz("range01", **split(x_train=images(12, dtype=np.float32) * 3,
                                                            x_test=images(6, dtype=np.float32))))
    assert "13 labels" in load_error(npz("len", **split(y_train=labels(13))))
    assert "1-D" in load_error(npz("ndim", **split(x_train=np.zeros(12), x_test=np.zeros(6))))
    assert "5-D" in load_error(npz("ndim5", **split(x_train=np.zeros((12, 1, 1, 2, 2)), x_test=np.zeros((6, 1, 1, 2, 2)))))
    assert "one-hot" in load_error(npz("onehot", **split(y_train=np.eye(3)[labels(12)])))
    (tmp_path / "junk.npz").write_bytes(b"junk")
    assert "not a readable .npz" in load_error(cfg(tmp_path / "junk.npz"))
