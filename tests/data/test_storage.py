"""uint8 inputs, ``as_float``, and ``dataset.storage`` (memory / mmap / auto): same numbers either way."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from trainwise.data import limit_per_class, load_dataset, split_validation, storage
from trainwise.data.base import TensorData, as_float
from trainwise.data.loader import gather
from trainwise.data.synthetic import make_synthetic
from trainwise.errors import DataError
from trainwise.study.config import DatasetConfig, TrialConfig
from trainwise.train import train

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINWISE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def uint8_data(n_train=192, n_test=64, channels=1, size=8, seed=0) -> TensorData:
    d = make_synthetic(n_train=n_train, n_test=n_test, channels=channels, size=size, seed=seed)
    q = lambda x: (x * 255).round().to(torch.uint8)  # noqa: E731
    return replace(d, x_train=q(d.x_train), x_test=q(d.x_test), classes=[f"c{i}" for i in range(d.num_classes)])


def as_float_data(d: TensorData) -> TensorData:
    return replace(d, x_train=as_float(d.x_train), x_test=as_float(d.x_test),
                   x_val=None if d.x_val is None else as_float(d.x_val))


def trial(**over) -> TrialConfig:
    d = dict(dataset={"name": "synthetic", "synthetic": {"size": 8}}, model={"name": "cnn", "width": 4},
             optimizer={"name": "sgd", "lr": 0.1}, train={"epochs": 2, "batch_size": 32, "threads": 1}, seed=0)
    d.update(over)
    return TrialConfig(**d)


def run(cfg, data, run_dir, **kw) -> tuple[dict, dict]:
    r = train(cfg, run_dir, progress=False, data=data, **kw)
    r = {k: v for k, v in r.items() if "time" not in k}
    return r, torch.load(Path(run_dir) / "model.pt", weights_only=True)


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_as_float():
    u = torch.arange(256, dtype=torch.uint8)
    f = as_float(u)
    assert f.dtype == torch.float32 and f[0] == 0 and f[255] == 1
    assert torch.equal(f, torch.arange(256, dtype=torch.float32) / 255)  # the loaders' old values, bit for bit
    x = torch.rand(3, 2)
    assert as_float(x) is x
    assert torch.equal(as_float(torch.tensor([3, -1], dtype=torch.int16)), torch.tensor([3.0, -1.0]))


def test_uint8_channel_stats_are_exact_and_chunk_independent(monkeypatch):
    d = uint8_data(n_train=300, channels=3)
    mean, std = d.channel_stats()
    x64 = as_float(d.x_train).double()
    assert torch.equal(mean, x64.mean(dim=(0, 2, 3)).float())
    assert torch.equal(std, x64.std(dim=(0, 2, 3)).float())
    f_mean, f_std = as_float_data(d).channel_stats()  # torch's float32 sums: within a few ulps
    assert torch.allclose(mean, f_mean, rtol=2e-6, atol=0) and torch.equal(std, f_std)
    monkeypatch.setattr("trainwise.data.base.STATS_CHUNK", 500)  # many chunks: the same numbers
    m2, s2 = d.channel_stats()
    assert torch.equal(m2, mean) and torch.equal(s2, std)
    flat = replace(d, x_train=d.x_train.flatten(1))  # uint8 features: per feature
    fm, fs = flat.channel_stats()
    assert fm.shape == (3 * 64,) and torch.equal(fm, x64.flatten(1).mean(0).float())


def test_gather_converts_only_the_batch():
    d = uint8_data()
    idx = torch.tensor([5, 0, 7])
    b = gather(d.x_train, d.y_train, idx, d.num_classes)
    assert b.x.dtype == torch.float32 and b.y.dtype == torch.float32
    assert torch.equal(b.x, as_float(d.x_train)[idx]) and torch.equal(b.labels, d.y_train[idx])


def test_uint8_and_float32_inputs_train_identically(tmp_path, monkeypatch):
    """The per-batch conversion gives the float32 values the loaders used to store: the same run
    bit for bit (the normaliser's stats pinned: float32 sums and exact sums may differ in the last bit)."""
    d = split_validation(uint8_data(), 0.25, seed=0)
    stats = d.channel_stats()
    monkeypatch.setattr(TensorData, "channel_stats", lambda self: stats)
    cfg = trial(sampler={"name": "selective-backprop"}, train={"epochs": 2, "batch_size": 32, "threads": 1,
                                                                "tta_sum": 2},
                robustness={"eps": [0.1], "attack": "pgd", "steps": 2, "samples": 24, "sanity": False})
    r8, w8 = run(cfg, d, tmp_path / "u8")
    r32, w32 = run(cfg, as_float_data(d), tmp_path / "f32")
    assert r8 == r32 and same_weights(w8, w32)
    assert "val_acc" in r8 and "test_acc_tta_sum" in r8 and "robust_acc@0.1" in r8


@pytest.mark.skipif(not FASHION.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_uint8_trains_like_float32(tmp_path, monkeypatch):
    cfg = trial(dataset={"name": "fashion-mnist", "limit_per_class": 30, "storage": "memory"},
                train={"epochs": 1, "batch_size": 50, "threads": 1})
    d = load_dataset(cfg.dataset)
    assert d.x_train.dtype == torch.uint8 and d.classes[9] == "Ankle boot"
    stats = d.channel_stats()
    monkeypatch.setattr(TensorData, "channel_stats", lambda self: stats)
    r8, w8 = run(cfg, d, tmp_path / "u8")
    r32, w32 = run(cfg, as_float_data(d), tmp_path / "f32")
    assert r8 == r32 and same_weights(w8, w32)


def test_mmap_and_memory_train_identically_and_resume(tmp_path, cache):
    d = uint8_data()
    m = storage.apply_storage(d, "mmap")
    assert all(storage.is_mapped(t) for t in (m.x_train, m.x_test)) and not storage.is_mapped(d.x_train)
    assert torch.equal(m.x_train, d.x_train) and m.classes == d.classes
    assert len(list(cache.glob("mmap/*.npy"))) == 2
    assert m.to("cpu").x_train is m.x_train  # mapped inputs stay where they are
    cfg = trial(sampler={"name": "selective-backprop"})
    r_mem, w_mem = run(cfg, d, tmp_path / "mem")
    r_map, w_map = run(cfg, m, tmp_path / "map")
    assert r_mem == r_map and same_weights(w_mem, w_map)
    # interrupted and resumed on the mapped data: the same final weights
    again = storage.apply_storage(uint8_data(), "mmap")  # the cached files, reopened
    assert len(list(cache.glob("mmap/*.npy"))) == 2
    paused = train(cfg, tmp_path / "resumed", progress=False, data=again, until=5)
    assert paused["steps"] == 5
    r_res, w_res = run(cfg, again, tmp_path / "resumed", resume=True)
    assert r_res == r_map and same_weights(w_res, w_map)


def test_storage_setting_through_load_dataset(tmp_path, cache):
    """Float32 inputs map too (synthetic), after the limit and the validation split."""
    ds = {"name": "synthetic", "synthetic": {"size": 8, "n_train": 200}, "limit_per_class": 15, "val_fraction": 0.2}
    mem = load_dataset(DatasetConfig(**ds, storage="memory"))
    mapped = load_dataset(DatasetConfig(**ds, storage="mmap"))
    assert not storage.is_mapped(mem.x_train)
    assert all(storage.is_mapped(t) for t in (mapped.x_train, mapped.x_val, mapped.x_test))
    for k in ("x_train", "x_val", "x_test", "y_train", "y_val"):
        assert torch.equal(getattr(mem, k), getattr(mapped, k))
    r_mem = train(trial(dataset={**ds, "storage": "memory"}), progress=False)
    r_map = train(trial(dataset={**ds, "storage": "mmap"}), progress=False)
    drop = lambda r: {k: v for k, v in r.items() if "time" not in k}  # noqa: E731
    assert drop(r_mem) == drop(r_map)


def test_auto_picks_by_the_share_of_ram(monkeypatch):
    d = uint8_data()
    assert storage.resolve(d, "auto") == "memory"
    assert storage.apply_storage(d, "auto") is d
    monkeypatch.setattr(storage, "total_ram", lambda: 4 * storage.input_bytes(d) - 1)
    assert storage.resolve(d, "auto") == "mmap"
    assert storage.is_mapped(storage.apply_storage(d, "auto").x_train)
    assert storage.resolve(d, "memory") == "memory"
    with pytest.raises(DataError, match="dataset.storage"):
        storage.resolve(d, "disk")


def test_a_users_mapped_array_is_kept_in_place(tmp_path, cache):
    d = uint8_data()
    np.save(tmp_path / "x.npy", d.x_train.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about read-only arrays
        user = torch.from_numpy(np.load(tmp_path / "x.npy", mmap_mode="r"))
    assert storage.is_mapped(user)
    data = replace(d, x_train=user)
    assert storage.resolve(data, "auto") == "mmap"
    m = storage.apply_storage(data, "mmap")
    assert storage.is_mapped(m.x_train) and torch.equal(m.x_train, d.x_train)
    assert len(list(cache.glob("mmap/*.npy"))) == 1  # x_test only: x_train stays in the user's file
    mem = storage.apply_storage(data, "memory")  # memory reads the file in
    assert not storage.is_mapped(mem.x_train) and torch.equal(mem.x_train, d.x_train)


def test_a_view_of_a_mapped_file_stays_a_view(tmp_path, cache):
    """An NHWC file mapped as an NCHW view (what the arrays loader does) is kept, not copied."""
    d = uint8_data(channels=3)
    np.save(tmp_path / "x.npy", d.x_train.permute(0, 2, 3, 1).contiguous().numpy())
    user = torch.from_numpy(np.load(tmp_path / "x.npy", mmap_mode="c")).permute(0, 3, 1, 2)
    m = storage.apply_storage(replace(d, x_train=user), "mmap")
    assert storage.is_mapped(m.x_train) and not m.x_train.is_contiguous()
    assert torch.equal(m.x_train, d.x_train) and len(list(cache.glob("mmap/*.npy"))) == 1  # x_test only
    idx = torch.tensor([3, 1])
    assert torch.equal(gather(m.x_train, m.y_train, idx, m.num_classes).x, as_float(d.x_train[idx]))


def test_limit_and_split_of_mapped_inputs_stay_mapped(cache):
    d = uint8_data(n_train=300)
    m = storage.apply_storage(d, "mmap")
    for f in (lambda x: limit_per_class(x, 7, seed=2), lambda x: split_validation(x, 0.3, seed=1)):
        a, b = f(d), f(m)
        assert storage.is_mapped(b.x_train) and b.classes == d.classes
        assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
        if a.x_val is not None:
            assert storage.is_mapped(b.x_val) and torch.equal(a.x_val, b.x_val)


def test_released_pages_read_back_the_same(monkeypatch, cache):
    """Releasing a mapping's resident pages (madvise) loses nothing: they are read again from the file."""
    d = uint8_data(n_train=400, size=16)
    m = storage.apply_storage(d, "mmap")
    monkeypatch.setattr(storage, "RESIDENT_CAP", 1)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        idx = torch.randint(0, 400, (32,), generator=g)
        b = gather(m.x_train, m.y_train, idx, m.num_classes)
        assert torch.equal(b.x, as_float(d.x_train[idx]))
    assert torch.equal(torch.stack(m.channel_stats()), torch.stack(d.channel_stats()))


def test_no_disk_space_is_one_clear_error(monkeypatch, cache):
    class Usage:
        free = 1 << 20

    monkeypatch.setattr(storage.shutil, "disk_usage", lambda p: Usage)
    with pytest.raises(DataError, match="not enough disk space.*dataset.storage: memory"):
        storage.apply_storage(uint8_data(), "mmap")
    assert not list(cache.glob("mmap/*"))
