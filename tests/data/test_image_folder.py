"""dataset.name: image-folder — layouts, decoding, the decode cache and its invalidation, errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainwise.data import fingerprint, load_dataset, load_raw
from trainwise.errors import DataError
from trainwise.study.config import DatasetConfig

CLASSES = ("cat", "dog", "fox")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TRAINWISE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def img(path: Path, seed: int, size=(8, 8), mode="RGB", fmt=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (*size, 3) if mode == "RGB" else size
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path, format=fmt)


def split_tree(root: Path, n_train=4, n_test=2, mode="RGB", ext=".png") -> Path:
    for ci, c in enumerate(CLASSES):
        for i in range(n_train):
            img(root / "train" / c / f"{i}{ext}", 100 * ci + i, mode=mode)
        for i in range(n_test):
            img(root / "test" / c / f"{i}{ext}", 1000 + 100 * ci + i, mode=mode)
    return root


def flat_tree(root: Path, n=4) -> Path:
    for ci, c in enumerate(CLASSES):
        for i in range(n):
            img(root / c / f"{i}.png", 100 * ci + i)
    return root


def cfg(path, **kw) -> DatasetConfig:
    return DatasetConfig(name="image-folder", path=str(path), **kw)


def test_train_test_layout_round_trips(tmp_path):
    root = split_tree(tmp_path / "imgs")
    d = load_raw(cfg(root))
    assert d.x_train.dtype == torch.uint8 and d.x_train.shape == (12, 3, 8, 8)
    assert d.x_test.shape == (6, 3, 8, 8) and d.y_train.dtype == torch.int64
    assert d.num_classes == 3 and d.classes == list(CLASSES)
    assert d.y_train.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    # pixels are the file's, channel-first
    want = np.array(Image.open(root / "train" / "dog" / "1.png"))
    assert torch.equal(d.x_train[5], torch.from_numpy(want).permute(2, 0, 1))
    assert fingerprint(d) == fingerprint(load_raw(cfg(root)))


def test_grayscale_default_and_channels_setting(tmp_path):
    root = split_tree(tmp_path / "gray", mode="L", ext=".bmp")
    assert load_raw(cfg(root)).x_train.shape[1] == 1
    rgb = load_raw(cfg(root, channels=3))
    assert rgb.x_train.shape[1] == 3 and torch.equal(rgb.x_train[:, 0], rgb.x_train[:, 2])
    mixed = split_tree(tmp_path / "mixed")
    img(mixed / "train" / "cat" / "gray.png", 7, mode="L")
    assert load_raw(cfg(mixed)).x_train.shape[1] == 3
    assert load_raw(cfg(mixed, channels=1)).x_train.shape[1] == 1


def test_resize_and_formats(tmp_path):
    root = split_tree(tmp_path / "imgs")
    img(root / "train" / "cat" / "big.jpg", 5, size=(12, 10), fmt="JPEG")
    img(root / "train" / "dog" / "w.webp", 6, size=(5, 9), fmt="WEBP")
    d = load_raw(cfg(root, resize=(6, 7)))
    assert d.x_train.shape == (14, 3, 6, 7) and d.x_test.shape == (6, 3, 6, 7)


def test_single_root_with_test_fraction_is_stratified_and_seeded(tmp_path):
    root = flat_tree(tmp_path / "flat")
    d = load_raw(cfg(root, test_fraction=0.25))
    assert torch.bincount(d.y_test).tolist() == [1, 1, 1] and torch.bincount(d.y_train).tolist() == [3, 3, 3]
    same = load_raw(cfg(root, test_fraction=0.25))
    other = load_raw(cfg(root, test_fraction=0.25, split_seed=5))
    assert torch.equal(same.x_test, d.x_test) and not torch.equal(other.x_test, d.x_test)
    # limit_per_class and the validation split work on the result
    s = load_dataset(cfg(root, test_fraction=0.25, val_fraction=0.34, limit_per_class=3))
    assert len(s.x_val) == 3 and len(s.x_train) == 6
    # train/ alone is split the same way
    alone = tmp_path / "alone"
    flat_tree(alone / "train")
    assert load_raw(cfg(alone, test_fraction=0.25)).classes == list(CLASSES)


def test_second_load_uses_the_cache(tmp_path, monkeypatch):
    root = split_tree(tmp_path / "imgs")
    first = load_raw(cfg(root))

    def refuse(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(Image, "open", refuse)
    second = load_raw(cfg(root))
    assert torch.equal(second.x_train, first.x_train) and torch.equal(second.y_test, first.y_test)
    assert second.classes == first.classes and fingerprint(second) == fingerprint(first)
    mapped = load_raw(cfg(root, storage="mmap"))
    assert torch.equal(mapped.x_train, first.x_train) and mapped.x_train.dtype == torch.uint8


@pytest.mark.parametrize("change", ["add", "modify", "remove"])
def test_a_changed_folder_is_decoded_again(tmp_path, monkeypatch, cache, change):
    root = split_tree(tmp_path / "imgs")
    before = load_raw(cfg(root))
    target = root / "train" / "fox" / "3.png"
    if change == "add":
        img(root / "train" / "fox" / "new.png", 77)
    elif change == "modify":
        img(target, 78)
        os.utime(target, ns=(1, 1))  # a different mtime even on a coarse clock
    else:
        target.unlink()
    calls = []
    real = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: calls.append(a) or real(*a, **k))
    after = load_raw(cfg(root))
    assert calls and fingerprint(after) != fingerprint(before)
    assert len(after.x_train) == {"add": 13, "modify": 12, "remove": 11}[change]
    assert len(list((cache / "image-folder").iterdir())) == 1  # the stale decoding is gone


def test_settings_are_part_of_the_cache_key(tmp_path):
    root = split_tree(tmp_path / "imgs")
    assert load_raw(cfg(root)).x_train.shape[1:] == (3, 8, 8)
    assert load_raw(cfg(root, resize=(4, 4))).x_train.shape[1:] == (3, 4, 4)
    assert load_raw(cfg(root, channels=1)).x_train.shape[1:] == (1, 8, 8)


def test_a_corrupt_cache_is_ignored(tmp_path, cache):
    root = split_tree(tmp_path / "imgs")
    first = load_raw(cfg(root))
    (entry,) = (cache / "image-folder").iterdir()
    (entry / "x_train.npy").write_bytes(b"garbage")
    assert torch.equal(load_raw(cfg(root)).x_train, first.x_train)


def test_hidden_files_are_skipped(tmp_path):
    root = split_tree(tmp_path / "imgs")
    (root / "train" / "cat" / ".DS_Store").write_bytes(b"\0")
    (root / "README.txt").write_text("about")
    assert len(load_raw(cfg(root)).x_train) == 12


def error(c) -> str:
    with pytest.raises(DataError) as e:
        load_raw(c)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_errors(tmp_path):
    assert "does not exist" in error(cfg(tmp_path / "nowhere"))
    root = split_tree(tmp_path / "a")
    (root / "train" / "dog" / "notes.txt").write_text("x")
    assert "train/dog/notes.txt is not an image" in error(cfg(root))

    root = split_tree(tmp_path / "b")
    img(root / "train" / "cat" / "odd.png", 1, size=(10, 12))
    msg = error(cfg(root))
    assert "train/cat/0.png is 8x8" in msg and "train/cat/odd.png is 10x12" in msg and "resize" in msg

    root = split_tree(tmp_path / "c")
    (root / "train" / "owl").mkdir()
    assert "train/owl/ holds no images" in error(cfg(root))

    root = split_tree(tmp_path / "d")
    img(root / "test" / "owl" / "0.png", 1)
    assert "test/owl/" in error(cfg(root)) and "training" in error(cfg(root))

    (tmp_path / "e" / "train").mkdir(parents=True)
    (tmp_path / "e" / "test").mkdir()
    assert "no class folders" in error(cfg(tmp_path / "e"))

    assert "test_fraction" in error(cfg(flat_tree(tmp_path / "f")))
    assert "remove dataset.test_fraction" in error(cfg(split_tree(tmp_path / "g"), test_fraction=0.2))

    root = split_tree(tmp_path / "h")
    (root / "train" / "cat" / "broken.png").write_bytes(b"not a png")
    assert "train/cat/broken.png cannot be read as an image" in error(cfg(root))

    root = split_tree(tmp_path / "i")
    img(root / "train" / "stray.png", 1)
    assert "outside a class folder" in error(cfg(root))
