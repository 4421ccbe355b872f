"""fingerprint(data): a content hash, stable across processes, changed by any one sample."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import torch

from trainwise.data import fingerprint
from trainwise.data.arrays import make_data
from trainwise.data.synthetic import make_synthetic

SNIPPET = ("from trainwise.data import fingerprint; from trainwise.data.synthetic import make_synthetic; "
           "print(fingerprint(make_synthetic(n_train=40, n_test=20, size=6)))")


def test_stable_across_processes():
    d = make_synthetic(n_train=40, n_test=20, size=6)
    fp = fingerprint(d)
    assert len(fp) == 16 and fp == fingerprint(make_synthetic(n_train=40, n_test=20, size=6))
    out = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == fp


def test_any_change_changes_it():
    d = make_synthetic(n_train=40, n_test=20, size=6)
    fp = fingerprint(d)
    x = d.x_test.clone()
    x[7, 0, 2, 3] += 1e-3
    assert fingerprint(replace(d, x_test=x)) != fp
    y = d.y_train.clone()
    y[0] = (y[0] + 1) % d.num_classes
    assert fingerprint(replace(d, y_train=y)) != fp
    assert fingerprint(replace(d, x_train=d.x_train.double())) != fp  # dtype
    assert fingerprint(replace(d, x_train=d.x_train.reshape(40, 6, 6, 1))) != fp  # shape
    # the test and training sets are not interchangeable
    assert fingerprint(replace(d, x_train=d.x_test, x_test=d.x_train, y_train=d.y_test, y_test=d.y_train)) != fp
    # a validation split counts
    assert fingerprint(replace(d, x_val=d.x_test[:3], y_val=d.y_test[:3])) != fp


def test_layout_and_chunking_do_not_matter(monkeypatch):
    mod = sys.modules["trainwise.data.fingerprint"]  # the module (the package's attribute is the function)
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, (30, 5, 4, 3), dtype=np.uint8)
    view = make_data("arrays", nhwc.transpose(0, 3, 1, 2), np.arange(30) % 3, nhwc[:6].transpose(0, 3, 1, 2),
                     np.arange(6) % 3, ["a", "b", "c"])
    copy = make_data("arrays", np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)), np.arange(30) % 3,
                     np.ascontiguousarray(nhwc[:6].transpose(0, 3, 1, 2)), np.arange(6) % 3, ["a", "b", "c"])
    assert not view.x_train.is_contiguous()
    fp = fingerprint(copy)
    assert fingerprint(view) == fp
    monkeypatch.setattr(mod, "_CHUNK", 7)  # many small slices, one row at a time
    assert fingerprint(view) == fp
    renamed = make_data("arrays", nhwc.transpose(0, 3, 1, 2), np.arange(30) % 3, nhwc[:6].transpose(0, 3, 1, 2),
                        np.arange(6) % 3, ["a", "b", "z"])
    assert fingerprint(renamed) != fp
    assert torch.equal(view.x_train, copy.x_train)
