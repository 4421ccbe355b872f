"""A content hash of a dataset: the same data give the same fingerprint in every process and run,
and a change to one sample (or one label, or a class name) gives another.

The hash covers, in order, each of ``x_train, y_train, x_test, y_test`` (then ``x_val, y_val`` when
present): its name, dtype, shape and bytes in logical (C) order, so a memory-mapped or NHWC-viewed
tensor hashes like its contiguous copy; the bytes are read a slice of rows at a time, so a
memory-mapped array is never copied whole into memory. Then the class names (if any).
"""

from __future__ import annotations

import hashlib
import json

import torch

from .storage import note_read

_CHUNK = 1 << 24  # about 16 MB of rows at a time


def _update(h, key: str, t: torch.Tensor) -> None:
    h.update(f"{key}:{str(t.dtype).removeprefix('torch.')}:{list(t.shape)}\n".encode())
    if t.dim() == 0:
        t = t.reshape(1)
    n = t.shape[0]
    row = max(1, t[:1].numel() * t.element_size())
    step = max(1, _CHUNK // row)
    for i in range(0, n, step):
        part = t[i:i + step].detach().to("cpu").contiguous().reshape(-1)
        if part.numel():
            h.update(part.view(torch.uint8).numpy().data)
            note_read(t, part.numel() * part.element_size())  # a mapped input: keep RSS bounded


def fingerprint(data) -> str:
    """sha256 (first 16 hex characters) of the inputs, labels and class names of ``data``
    (a ``TensorData``)."""
    h = hashlib.sha256(b"trainwise-data-1\n")
    for key in ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val"):
        t = getattr(data, key, None)
        if t is not None:
            _update(h, key, t)
    classes = getattr(data, "classes", None)
    h.update(("classes:" + json.dumps(None if classes is None else [str(c) for c in classes])).encode())
    return h.hexdigest()[:16]
