"""Data from the user's own Python function (``dataset.name: python``).

``function`` is ``package.module:function`` (imported with the current directory on the path) or
``path/to/file.py:function`` (relative to the current directory; imported under a module name
unique to that file, with the file's folder on the path for its own imports). The function is
called with no arguments and returns ``(train, test)``, each

* an ``(x, y)`` pair of tensors/arrays (as for ``dataset.name: arrays``, see arrays.py), or
* a map-style ``torch.utils.data.Dataset`` (``len`` and ``[i]``) yielding ``(x, y)``: x a tensor,
  array or PIL image, y an int or a 0-d tensor. It is materialised once, sample 0 to len-1. Images
  are stored uint8 when they came as uint8 or PIL images, or as floats that are exactly k/255
  (``ToTensor`` output); other floats as float32. A dataset's ``classes`` attribute (a list of
  names, one per class, as torchvision's) names the classes.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .arrays import as_inputs, check_pair, encode_labels, make_data
from .base import TensorData
from .download import one_line

FORM = "'package.module:function' or 'path/to/file.py:function'"


@contextmanager
def _on_path(folder: str, first: bool):
    added = folder not in sys.path
    if added and first:
        sys.path.insert(0, folder)
    elif added:
        sys.path.append(folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def _import(spec: str):
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise DataError(f"dataset.function {spec!r} must be {FORM}")
    is_file = where.endswith(".py") or "/" in where or os.sep in where
    try:
        if is_file:
            path = Path(where).expanduser()
            if not path.is_file():
                raise DataError(f"dataset.function: file {where} does not exist (relative paths start at "
                                f"{Path.cwd()}); fix the path")
            path = path.resolve()
            modname = "trainwise_user_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
            mspec = importlib.util.spec_from_file_location(modname, path)
            if mspec is None or mspec.loader is None:
                raise DataError(f"dataset.function: cannot import {where} as Python; give a .py file")
            module = importlib.util.module_from_spec(mspec)
            sys.modules[modname] = module  # dataclasses, pickling and relative lookups need it
            try:
                with _on_path(str(path.parent), True):
                    mspec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(modname, None)
                raise
        else:
            try:
                with _on_path(os.getcwd(), False):
                    module = importlib.import_module(where)
            except ModuleNotFoundError as e:
                if e.name and (where == e.name or where.startswith(e.name + ".")):
                    raise DataError(f"dataset.function: module {where!r} not found; check the name, run trainwise "
                                    "from the folder holding it, install it, or give 'path/to/file.py:function'"
                                    ) from None
                raise
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"dataset.function: importing {where} raised {type(e).__name__}: {one_line(e)}; fix the "
                        "module") from None
    if not hasattr(module, name):
        public = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        has = f" (it has: {', '.join(public[:20])})" if public else ""
        raise DataError(f"dataset.function: {where} has no {name!r}{has}; fix the name after ':'")
    fn = getattr(module, name)
    if not callable(fn):
        raise DataError(f"dataset.function: {where}:{name} is of type {type(fn).__name__}, not a function; "
                        "name the function after ':'")
    return fn


def _np(v, where: str) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().numpy()
    try:
        return np.asarray(v)
    except Exception as e:
        raise DataError(f"{where} cannot be read as an array ({type(e).__name__}: {one_line(e)}); return tensors "
                        "or numpy arrays") from None


def _sample(x, where: str) -> tuple[np.ndarray, bool]:
    """A sample as an array, and whether it is channel-first already (PIL images are made so)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None
    if Image is not None and isinstance(x, Image.Image):
        if x.mode not in ("L", "RGB"):
            x = x.convert("L" if x.mode in ("1", "LA", "I", "I;16", "F") else "RGB")
        a = np.asarray(x, dtype=np.uint8)
        return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)), True
    return _np(x, where), False


def _materialise(ds, part: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        n = len(ds)
    except Exception as e:
        raise DataError(f"the {part} dataset has no length ({type(e).__name__}: {one_line(e)}); return a map-style "
                        "Dataset (with __len__ and __getitem__) or an (x, y) pair") from None
    if n == 0:
        raise DataError(f"the {part} dataset is empty; give at least one sample")
    xs, ys, chw = None, [], False
    for i in range(n):
        where = f"{part} dataset[{i}]"
        try:
            item = ds[i]
        except Exception as e:
            raise DataError(f"{where} raised {type(e).__name__}: {one_line(e)}; fix the dataset") from None
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DataError(f"{where} is of type {type(item).__name__}, not an (x, y) pair; return (input, label) "
                            "from __getitem__")
        x, known = _sample(item[0], where)
        if xs is None:
            if x.dtype.kind not in "biuf":
                raise DataError(f"{where}: the input holds {x.dtype} values, not numbers; return tensors, arrays "
                                "or PIL images")
            first, chw = x, known
            kind = np.uint8 if x.dtype == np.uint8 else np.float32 if x.dtype.kind == "f" else np.int64
            xs = np.empty((n, *x.shape), dtype=kind)
        elif x.shape != first.shape:
            raise DataError(f"{where}: the input has shape {tuple(x.shape)} but {part} dataset[0] "
                            f"{tuple(first.shape)}; give every sample one shape (resize the images)")
        elif (x.dtype == np.uint8) != (xs.dtype == np.uint8):
            raise DataError(f"{where}: the input is {x.dtype} but {part} dataset[0] is {first.dtype}; give every "
                            "sample one kind (uint8 or PIL images, or floats)")
        xs[i] = x
        y = item[1]
        if isinstance(y, torch.Tensor):
            if y.numel() != 1:
                raise DataError(f"{where}: the label has shape {tuple(y.shape)}; labels must be one class index")
            y = y.item()
        ys.append(y)
    if xs.dtype == np.float32 and xs.ndim == 4 and _on_grid(xs):  # images (not features) as k/255
        xs = np.rint(xs * 255).astype(np.uint8)
    return (xs, chw), np.asarray(ys)


def _on_grid(x: np.ndarray) -> bool:
    """Every value is exactly k/255 in float32 (uint8 images turned to floats, e.g. by ToTensor)."""
    for i in range(0, len(x), 1024):
        part = x[i:i + 1024]
        if part.size and (part.min() < 0 or part.max() > 1):
            return False
        k = np.rint(part * 255)
        if not np.array_equal(k.astype(np.float32) / np.float32(255), part):
            return False
    return True


def _part(obj, part: str):
    """((x, x_is_chw), y) of one returned part."""
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and not isinstance(obj, torch.utils.data.Dataset):
        return (_np(obj[0], f"the {part} inputs"), False), _np(obj[1], f"the {part} labels")
    if isinstance(obj, torch.utils.data.IterableDataset):
        raise DataError(f"the {part} dataset is an IterableDataset; return a map-style Dataset (__len__ and "
                        "__getitem__) or an (x, y) pair")
    if hasattr(obj, "__getitem__") and hasattr(obj, "__len__") and not isinstance(obj, (str, bytes, dict)):
        return _materialise(obj, part)
    raise DataError(f"the {part} part is of type {type(obj).__name__}; give an (x, y) pair of tensors/arrays or a "
                    "map-style torch Dataset yielding (x, y)")


def load_python(cfg) -> TensorData:
    spec = cfg.function
    fn = _import(spec)
    try:
        out = fn()
    except Exception as e:
        raise DataError(f"dataset.function {spec} raised {type(e).__name__}: {one_line(e)}; fix the function"
                        ) from None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        what = f"a {len(out)}-tuple" if isinstance(out, (tuple, list)) else f"a value of type {type(out).__name__}"
        raise DataError(f"dataset.function {spec} returned {what}; it must return (train, test), each an (x, y) "
                        "pair or a map-style Dataset")
    return from_parts(out[0], out[1], cfg.name)


def from_parts(train, test, name: str = "python") -> TensorData:
    """The ``TensorData`` of a train and a test part, each an (x, y) pair or a map-style Dataset."""
    out = (train, test)
    (xtr, ctr), ytr = _part(out[0], "train")
    (xte, cte), yte = _part(out[1], "test")
    xtr = as_inputs(xtr, "the train inputs", "NCHW" if ctr else None)
    xte = as_inputs(xte, "the test inputs", "NCHW" if cte else None)
    check_pair(xtr, ytr, "the train inputs", "the train labels")
    check_pair(xte, yte, "the test inputs", "the test labels")
    ytr, yte, classes = encode_labels(ytr, yte, "the train labels", "the test labels")
    names = getattr(out[0], "classes", None)
    if isinstance(names, (list, tuple)) and len(names) == len(classes) and all(isinstance(c, str) for c in names):
        classes = list(names)
    return make_data(name, np.ascontiguousarray(xtr), ytr, np.ascontiguousarray(xte), yte, classes)
