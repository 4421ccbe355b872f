"""dataset.name: python — a user function returning (x, y) pairs or map-style Datasets."""

from __future__ import annotations

import textwrap
import uuid

import pytest
import torch

from trainwise.data import fingerprint, load_raw
from trainwise.errors import DataError
from trainwise.study.config import DatasetConfig

PAIRS = """
import numpy as np, torch

def pairs():
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (18, 8, 8, 3), dtype=np.uint8)  # NHWC
    y = np.arange(18) % 3
    return (x[:12], y[:12]), (torch.from_numpy(x[12:]), torch.from_numpy(y[12:]))
"""

DATASETS = """
import numpy as np, torch
from PIL import Image
from torch.utils.data import Dataset

class Pil(Dataset):
    classes = ["ant", "bee", "cow"]
    def __init__(self, n, seed):
        self.x = np.random.default_rng(seed).integers(0, 256, (n, 6, 7, 3), dtype=np.uint8)
    def __len__(self):
        return len(self.x)
    def __getitem__(self, i):
        return Image.fromarray(self.x[i]), i % 3

class ToTensor(Pil):
    def __getitem__(self, i):
        return torch.from_numpy(self.x[i]).permute(2, 0, 1).float().div(255), torch.tensor(i % 3)

class Features(Dataset):
    def __len__(self):
        return 10
    def __getitem__(self, i):
        return torch.tensor([i * 1.5, -i * 3.0]), i % 2

def pil():
    return Pil(9, 0), Pil(6, 1)

def floats():
    return ToTensor(9, 0), ToTensor(6, 1)

def features():
    return Features(), Features()
"""


def write(tmp_path, text: str, seed: int = 0) -> str:
    name = f"userdata_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(text).replace("SEED", str(seed)))
    return name


def cfg(function: str, **kw) -> DatasetConfig:
    return DatasetConfig(name="python", function=function, **kw)


def test_pairs_from_a_file_and_a_module(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = write(tmp_path, PAIRS)
    d = load_raw(cfg(f"{name}.py:pairs"))
    assert d.x_train.dtype == torch.uint8 and d.x_train.shape == (12, 3, 8, 8) and d.x_test.shape == (6, 3, 8, 8)
    assert d.y_train.dtype == torch.int64 and d.num_classes == 3 and d.classes == ["0", "1", "2"]
    m = load_raw(cfg(f"{name}:pairs"))
    assert torch.equal(m.x_train, d.x_train) and fingerprint(m) == fingerprint(d)
    other = write(tmp_path, PAIRS, seed=1)
    assert fingerprint(load_raw(cfg(f"./{other}.py:pairs"))) != fingerprint(d)


def test_datasets_are_materialised(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = write(tmp_path, DATASETS)
    p = load_raw(cfg(f"{name}.py:pil"))
    assert p.x_train.dtype == torch.uint8 and p.x_train.shape == (9, 3, 6, 7)
    assert p.classes == ["ant", "bee", "cow"] and p.y_test.tolist() == [0, 1, 2, 0, 1, 2]
    f = load_raw(cfg(f"{name}.py:floats"))  # k/255 floats are stored as the same uint8
    assert f.x_train.dtype == torch.uint8 and torch.equal(f.x_train, p.x_train)
    t = load_raw(cfg(f"{name}.py:features"))
    assert t.x_train.dtype == torch.float32 and t.x_train.shape == (10, 2) and t.num_classes == 2
    assert t.x_train[3].tolist() == [4.5, -9.0]


def error(c) -> str:
    with pytest.raises(DataError) as e:
        load_raw(c)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "does not exist" in error(cfg("nowhere/data.py:load"))
    assert "module 'no_such_module_xyz' not found" in error(cfg("no_such_module_xyz:load"))
    bad_import = write(tmp_path, "import no_such_dependency_xyz\n")
    msg = error(cfg(f"{bad_import}.py:f"))
    assert "ModuleNotFoundError" in msg and "no_such_dependency_xyz" in msg
    name = write(tmp_path, PAIRS + textwrap.dedent("""
        def boom():
            raise ValueError("bad\\nthing")
        def one():
            return 1
        def triple():
            return 1, 2, 3
        def strings():
            return ("a", "b"), ("c", "d")
        def mismatch():
            return (np.zeros((4, 2)), np.arange(5)), (np.zeros((2, 2)), np.arange(2))
        def negative():
            return (np.zeros((4, 2)), np.array([0, 1, -1, 0])), (np.zeros((2, 2)), np.arange(2))
        def bad_item():
            return [1, 2, 3], [1, 2, 3]
        number = 3
    """))
    msg = error(cfg(f"{name}.py:missing"))
    assert "has no 'missing'" in msg and "pairs" in msg
    assert "not a function" in error(cfg(f"{name}.py:number"))
    assert "raised ValueError: bad thing" in error(cfg(f"{name}.py:boom"))
    assert "returned a value of type int" in error(cfg(f"{name}.py:one"))
    assert "returned a 3-tuple" in error(cfg(f"{name}.py:triple"))
    assert "not numbers" in error(cfg(f"{name}.py:strings"))
    assert "5 labels" in error(cfg(f"{name}.py:mismatch"))
    assert "not negative" in error(cfg(f"{name}.py:negative"))
    assert "not an (x, y) pair" in error(cfg(f"{name}.py:bad_item"))
    assert "must be 'package.module:function'" in error(cfg("justaname"))
