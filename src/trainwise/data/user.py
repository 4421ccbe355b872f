"""Data handed to the Python API (``trainwise.run_study(..., data=...)``), stored as an ``arrays``
dataset so that the config names it, worker processes can load it, and its fingerprint joins the
trial ids."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..io import atomic_write_bytes
from .base import TensorData
from .fingerprint import fingerprint
from .python_source import from_parts


def to_tensor_data(data) -> TensorData:
    """``data``: a TensorData; ``(x_train, y_train, x_test, y_test)`` arrays or tensors; or
    ``(train, test)``, each an ``(x, y)`` pair or a map-style ``torch.utils.data.Dataset``."""
    if isinstance(data, TensorData):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 4:
        return from_parts((data[0], data[1]), (data[2], data[3]), "arrays")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return from_parts(data[0], data[1], "arrays")
    raise DataError(f"data= is of type {type(data).__name__}; give a TensorData, (x_train, y_train, x_test, "
                    "y_test) or (train, test) Datasets / (x, y) pairs")


def save_as_arrays(data, folder: Path) -> dict:
    """Write ``data`` once as .npy files under ``folder/<content hash>/``; return the dataset config
    naming them (``{"name": "arrays", "path": ...}``)."""
    td = to_tensor_data(data)
    if td.x_val is not None:
        raise DataError("data= holds a validation split; pass the training set whole and set "
                        "dataset.val_fraction instead")
    where = Path(folder) / fingerprint(td)[:16]
    arrays = dict(x_train=td.x_train, y_train=td.y_train, x_test=td.x_test, y_test=td.y_test)
    if td.views is not None:  # paired data: each view in its shape, and the groups (arrays.load_paired)
        arrays = {}
        for split, x, y in (("train", td.x_train, td.y_train), ("test", td.x_test, td.y_test)):
            a, b = torch.split(x.reshape(len(x), -1), [math.prod(v) for v in td.views], dim=1)
            arrays |= {f"a_{split}": a.reshape(len(x), *td.views[0]), f"b_{split}": b.reshape(len(x), *td.views[1]),
                       f"group_{split}": y}
    for key, t in arrays.items():
        path = where / f"{key}.npy"
        if path.is_file():  # the same content hash: written before
            continue
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(t.cpu().numpy()))
        atomic_write_bytes(path, buf.getvalue())
    return {"name": "arrays", "path": str(where)}
