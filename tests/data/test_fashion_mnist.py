"""Fashion-MNIST loader: lookup order, clear errors, verified download, and the real files."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import trainwise.data.fashion_mnist as fm
from trainwise.errors import DataError

REAL_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_SYSTEM_DIRS = list(fm.SYSTEM_DIRS)


def idx_gz(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes(), mtime=0)


def fake_files(n_train: int = 20, n_test: int = 10, label: int | None = None, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)

    def labels(n: int) -> np.ndarray:
        return np.full(n, label) if label is not None else np.arange(n) % 10

    return {
        fm.TRAIN_IMAGES: idx_gz(rng.integers(0, 256, (n_train, 28, 28))),
        fm.TRAIN_LABELS: idx_gz(labels(n_train)),
        fm.TEST_IMAGES: idx_gz(rng.integers(0, 256, (n_test, 28, 28))),
        fm.TEST_LABELS: idx_gz(labels(n_test)),
    }


def write(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real environment leaks in: private cache, no $TRAINWISE_DATA, a missing system dir."""
    monkeypatch.setenv("TRAINWISE_CACHE", str(tmp_path / "cache"))
    for var in ("TRAINWISE_DATA", "TRAINWISE_FASHION_MNIST_URL", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(fm, "SYSTEM_DIRS", [str(tmp_path / "system")])


def test_load_from_data_dir(tmp_path):
    d = write(tmp_path / "mine", fake_files())
    data = fm.load_fashion_mnist(data_dir=str(d))
    assert data.name == "fashion-mnist" and data.num_classes == 10
    assert data.x_train.shape == (20, 1, 28, 28) and data.x_test.shape == (10, 1, 28, 28)
    assert data.x_train.dtype == torch.uint8 and data.y_train.dtype == torch.int64  # as_float: / 255
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(data.x_train[:, 0].numpy(), rng.integers(0, 256, (20, 28, 28)))
    assert data.classes[0] == "T-shirt/top" and len(data.classes) == 10
    assert data.y_train.tolist() == [i % 10 for i in range(20)]


def test_lookup_order(tmp_path, monkeypatch):
    write(tmp_path / "system", fake_files(label=1))
    write(tmp_path / "env" / "fashion-mnist", fake_files(label=2))
    user = write(tmp_path / "user", fake_files(label=3))
    write(tmp_path / "cache" / "fashion-mnist", fake_files(label=4))
    assert fm.load_fashion_mnist().y_train[0] == 1  # system dir beats the cache
    monkeypatch.setenv("TRAINWISE_DATA", str(tmp_path / "env"))
    assert fm.load_fashion_mnist().y_train[0] == 2  # $TRAINWISE_DATA beats the system dir
    assert fm.load_fashion_mnist(data_dir=user).y_train[0] == 3  # data_dir beats everything
    monkeypatch.delenv("TRAINWISE_DATA")
    monkeypatch.setattr(fm, "SYSTEM_DIRS", [])
    assert fm.load_fashion_mnist().y_train[0] == 4


def test_missing_everywhere(tmp_path):
    with pytest.raises(DataError) as e:
        fm.load_fashion_mnist()
    msg = str(e.value)
    assert "Fashion-MNIST not found" in msg and "apt-get install dataset-fashion-mnist" in msg
    assert str(tmp_path / "system") in msg and str(tmp_path / "cache" / "fashion-mnist") in msg
    assert "dataset.download: true" in msg and "\n" not in msg


def test_data_dir_missing_file(tmp_path):
    d = write(tmp_path / "mine", fake_files())
    (d / fm.TEST_LABELS).unlink()
    with pytest.raises(DataError, match=fm.TEST_LABELS):
        fm.load_fashion_mnist(data_dir=d)


@pytest.mark.parametrize(
    "files, match",
    [
        ({fm.TRAIN_LABELS: idx_gz(np.zeros(19))}, "20 images but .* 19 labels"),
        ({fm.TEST_LABELS: idx_gz(np.full(10, 10))}, "label 10, expected 0..9"),
        ({fm.TEST_IMAGES: idx_gz(np.zeros((10, 28, 27)))}, r"expected uint8 \(N, 28, 28\)"),
        ({fm.TRAIN_IMAGES: b"\x1f\x8b\x08\x00garbage"}, "gzip"),
    ],
)
def test_bad_contents(tmp_path, files, match):
    d = write(tmp_path / "mine", {**fake_files(), **files})
    with pytest.raises(DataError, match=match) as e:
        fm.load_fashion_mnist(data_dir=d)
    assert str(d) in str(e.value) and "\n" not in str(e.value)


def _serve(root: Path, monkeypatch, files: dict[str, bytes], checksums: dict[str, bytes] | None = None) -> None:
    write(root, files)
    sums = {n: hashlib.sha256((checksums or files)[n]).hexdigest() for n in fm.FILES}
    monkeypatch.setattr(fm, "SHA256", sums)


def test_download(tmp_path, served, monkeypatch):
    root, url = served.root, served.url
    files = fake_files()
    _serve(root, monkeypatch, files)
    data = fm.load_fashion_mnist(download=True, base_url=url)
    cached = tmp_path / "cache" / "fashion-mnist"
    assert sorted(os.listdir(cached)) == sorted(fm.FILES)
    assert all((cached / n).read_bytes() == files[n] for n in fm.FILES)
    assert data.x_train.shape == (20, 1, 28, 28)
    requests = len(served.requested)
    fm.load_fashion_mnist(download=True, base_url=url)  # now found in the cache
    assert len(served.requested) == requests


def test_download_url_from_env(tmp_path, served, monkeypatch):
    root, url = served.root, served.url
    _serve(root / "mirror", monkeypatch, fake_files())
    monkeypatch.setenv("TRAINWISE_FASHION_MNIST_URL", url + "mirror")
    assert fm.load_fashion_mnist(download=True).x_test.shape == (10, 1, 28, 28)


def test_download_checksum_mismatch(tmp_path, served, monkeypatch):
    root, url = served.root, served.url
    good = fake_files()
    tampered = {**good, fm.TRAIN_LABELS: idx_gz(np.ones(20))}
    _serve(root, monkeypatch, tampered, checksums=good)
    cached = write(tmp_path / "cache" / "fashion-mnist", {fm.TRAIN_IMAGES: good[fm.TRAIN_IMAGES]})
    before = (cached / fm.TRAIN_IMAGES).stat()
    with pytest.raises(DataError, match="checksum mismatch") as e:
        fm.load_fashion_mnist(download=True, base_url=url)
    assert fm.TRAIN_LABELS in str(e.value) and "\n" not in str(e.value)
    assert sorted(os.listdir(cached)) == [fm.TRAIN_IMAGES]  # nothing partial left behind
    after = (cached / fm.TRAIN_IMAGES).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert "/" + fm.TRAIN_IMAGES not in served.requested  # the good file was not fetched again


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_debian_files(monkeypatch):
    assert str(REAL_DIR) in DEFAULT_SYSTEM_DIRS
    for name in fm.FILES:
        digest = hashlib.sha256((REAL_DIR / name).read_bytes()).hexdigest()
        assert digest == fm.DEBIAN_SHA256[name], name
    monkeypatch.setattr(fm, "SYSTEM_DIRS", DEFAULT_SYSTEM_DIRS)
    data = fm.load_fashion_mnist()
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.y_train).tolist() == [6000] * 10
    assert torch.bincount(data.y_test).tolist() == [1000] * 10
