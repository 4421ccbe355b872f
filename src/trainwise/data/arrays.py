"""The user's own arrays (``dataset.name: arrays``), and the checks every user dataset shares.

``path`` is an ``.npz`` file, or a folder of ``.npy`` files, holding ``x_train, y_train, x_test,
y_test`` (or ``x, y`` plus ``dataset.test_fraction`` for a stratified, seeded held-out test set).
Paired data for retrieval (``task: retrieval``) holds ``a_train, b_train, a_test, b_test`` (the
two views of each pair, images or features) and optionally ``group_train, group_test`` (integer
ids: pairs of one group are each other's positives, e.g. 5 captions of one image); see
``load_paired``.

Inputs (``as_inputs``):

* 4-D arrays are images, NCHW or NHWC (NHWC when the last axis is 1 or 3 and the second is not);
  3-D arrays are grayscale images (N, H, W). They are stored NCHW.
* uint8 images stay uint8 (value / 255 is the [0, 1] input); other integer images must hold
  0..255 and become uint8; float images become float32 and must be finite and in [0, 1].
* 2-D arrays are tabular features (N, D), stored float32, any finite range (the model wrapper
  standardises them).

Labels (``encode_labels``) are integer class indices 0..C-1 with C = the largest training label
+ 1 (whole-valued floats are accepted), or strings, mapped to the sorted training class names.

Storage: with ``storage: mmap`` (or ``auto`` and inputs larger than a quarter of RAM) the
``x_*.npy`` files of a folder are memory-mapped, copy-on-write (``mmap_mode="c"``): nothing is
read until a batch is gathered (indexing copies just that batch), the file is never written,
and the tensors are writable, so torch neither warns about a read-only array nor crashes on an
in-place operation. NHWC files stay mapped as a channel-first view. What cannot stay a view of
the file (an ``.npz`` member, a dtype conversion, a test split taken out of ``x``) is read into
memory; ``storage.apply_storage`` then moves it to a mapped cache file if the setting asks so.
"""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import DataError
from .base import TensorData
from .download import one_line

SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")
WHOLE_KEYS = ("x", "y")
PAIRED_KEYS = ("a_train", "b_train", "a_test", "b_test")
_CHUNK = 1 << 24  # bytes scanned at a time (finite/range checks on memory-mapped arrays)


# ---------------------------------------------------------------- shared by every user dataset


def use_mmap(storage: str, nbytes: int) -> bool:
    """``storage`` mmap, or auto and inputs of more than ``storage.AUTO_SHARE`` of the RAM this
    process may use (the rule ``storage.resolve`` applies, cgroup limits included)."""
    from .storage import AUTO_SHARE, total_ram

    return storage == "mmap" or (storage == "auto" and nbytes > AUTO_SHARE * total_ram())


def _rows(x: np.ndarray):
    """Slices of ``x`` along its first axis of about _CHUNK bytes each."""
    row = max(1, x[:1].nbytes)
    step = max(1, _CHUNK // row)
    for i in range(0, len(x), step):
        yield i, x[i:i + step]


def scan(x: np.ndarray) -> tuple[int | None, float, float]:
    """(index of the first sample holding NaN/inf or None, min, max) of a float array, chunked."""
    lo, hi = np.inf, -np.inf
    for i, part in _rows(x):
        ok = np.isfinite(part.reshape(len(part), -1)).all(axis=1)
        if not ok.all():
            return i + int(np.argmin(ok)), lo, hi
        if part.size:
            lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    return None, lo, hi


def as_inputs(x, where: str, layout: str | None = None) -> np.ndarray:
    """``x`` as stored inputs: uint8 or float32 images (N, C, H, W), or float32 features (N, D).

    ``where`` names the array in messages; ``layout`` "NCHW" skips the NHWC guess. A memory-mapped
    uint8/float32 array comes back as a view (no copy)."""
    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where} holds {x.dtype} values, not numbers; store the inputs as uint8 images or "
                        "float32 arrays")
    if x.ndim not in (2, 3, 4):
        raise DataError(f"{where} has shape {tuple(x.shape)} ({x.ndim}-D); inputs must be images (N, C, H, W), "
                        "(N, H, W, C) or (N, H, W), or features (N, D); reshape it")
    if len(x) == 0:
        raise DataError(f"{where} holds no samples; give at least one")
    if x.ndim == 2:  # tabular features: any finite range
        if x.dtype != np.float32:
            x = x.astype(np.float32)
        bad, _, _ = scan(x)
        if bad is not None:
            raise DataError(f"{where} sample {bad} holds NaN or infinity; remove or fill the missing values")
        return x
    if x.ndim == 3:
        x = x[:, None]
    elif layout != "NCHW" and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW (a view)
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind in "iu":
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{where} holds integer pixel values {lo}..{hi}; integer images must hold 0..255 "
                            "(store them as uint8), or give float images in [0, 1]")
        return x.astype(np.uint8)
    if x.dtype.kind == "b":
        raise DataError(f"{where} holds booleans; store images as uint8 (0..255) or float32 in [0, 1]")
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    bad, lo, hi = scan(x)
    if bad is not None:
        raise DataError(f"{where} image {bad} holds NaN or infinity; fix or remove it")
    if lo < 0 or hi > 1:
        raise DataError(f"{where} holds float pixel values {lo:g}..{hi:g}, outside [0, 1]; divide uint8 pixels by "
                        "255 (or store them as uint8), or give 2-D (N, D) arrays for tabular features")
    return x


def _label_array(y, where: str) -> np.ndarray:
    y = np.asarray(y) if not isinstance(y, np.ndarray) else y
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        hint = "; for one-hot labels give y.argmax(1)" if y.ndim == 2 else ""
        raise DataError(f"{where} has shape {tuple(y.shape)}; labels must be 1-D class indices or names{hint}")
    return np.asarray(y)


def _is_text(y: np.ndarray) -> bool:
    return y.dtype.kind in "US" or (y.dtype.kind == "O" and len(y) > 0 and all(isinstance(v, str) for v in y))


def _as_index(y: np.ndarray, where: str) -> np.ndarray:
    if y.dtype.kind in "biu":
        out = y.astype(np.int64)
    elif y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{where}[{i}] is {y[i]!r}: labels must be integer class indices (or class names); "
                            "give integers 0..C-1")
        out = y.astype(np.int64)
    else:
        raise DataError(f"{where} holds {y.dtype} values; labels must be integer class indices 0..C-1 or "
                        "class names (strings)")
    if len(out) and out.min() < 0:
        i = int(np.argmin(out))
        raise DataError(f"{where}[{i}] is {out[i]}: labels must be class indices 0..C-1, not negative; renumber "
                        "the classes from 0")
    return out


def encode_labels(y_train, y_test, where_train: str, where_test: str
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(train indices, test indices, class names). Integer labels are indices, C = max train + 1;
    string labels map to the sorted training names. A test label unknown to training is an error."""
    ytr, yte = _label_array(y_train, where_train), _label_array(y_test, where_test)
    if _is_text(ytr) or _is_text(yte):
        if not (_is_text(ytr) and _is_text(yte)):
            raise DataError(f"{where_train} and {where_test} mix class names and numbers; use one kind for both")
        classes = sorted({str(v) for v in ytr})
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted({str(v) for v in yte} - set(classes))
        if unknown:
            raise DataError(f"{where_test} holds class {unknown[0]!r} that {where_train} never has (training "
                            f"classes: {', '.join(classes[:20])}); every test class needs training samples")
        return (np.fromiter((index[str(v)] for v in ytr), np.int64, len(ytr)),
                np.fromiter((index[str(v)] for v in yte), np.int64, len(yte)), classes)
    ytr, yte = _as_index(ytr, where_train), _as_index(yte, where_test)
    c = int(ytr.max()) + 1 if len(ytr) else 0
    if len(yte) and yte.max() >= c:
        i = int(np.argmax(yte))
        raise DataError(f"{where_test}[{i}] is {yte[i]}, but {where_train} has labels 0..{c - 1} only; every test "
                        "class needs training samples (labels are class indices 0..C-1)")
    return ytr, yte, [str(i) for i in range(c)]


def stratified_split(y: np.ndarray, fraction: float, seed: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) sorted indices: ``fraction`` of each class held out (rounded; each class keeps at
    least one training sample), seeded by ``seed`` the way ``base.split_validation`` is."""
    g = torch.Generator().manual_seed(seed)
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    train, test = [], []
    for c in range(int(yt.max()) + 1 if len(yt) else 0):
        idx = (yt == c).nonzero().flatten()
        if not len(idx):
            continue
        perm = idx[torch.randperm(len(idx), generator=g)]
        k = min(int(round(fraction * len(idx))), len(idx) - 1)
        test.append(perm[:k])
        train.append(perm[k:])
    test_idx = torch.cat(test).sort().values.numpy() if test else np.zeros(0, np.int64)
    if not len(test_idx):
        raise DataError(f"test_fraction {fraction:g} of {where} ({len(y)} samples) leaves an empty test set; "
                        "raise dataset.test_fraction or add samples")
    return torch.cat(train).sort().values.numpy(), test_idx


def to_tensor(a: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``a``'s memory (a writable or copy-on-write array: no warning, no copy)."""
    if not a.flags.writeable:  # only a read-only array is copied (torch cannot safely share it)
        a = a.copy()
    return torch.from_numpy(a)


def is_mapped(a: np.ndarray) -> bool:
    while a is not None:
        if isinstance(a, np.memmap):
            return True
        a = a.base if isinstance(a.base, np.ndarray) else None
    return False


def make_data(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
              classes: Sequence[str]) -> TensorData:
    """The ``TensorData`` of checked arrays (inputs from ``as_inputs``, labels from ``encode_labels``)."""
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"training inputs have shape {tuple(x_train.shape[1:])} per sample but test inputs "
                        f"{tuple(x_test.shape[1:])}; give both the same shape")
    if x_train.dtype != x_test.dtype:  # uint8 with float: keep both as float in [0, 1]
        x_train = x_train.astype(np.float32) / 255 if x_train.dtype == np.uint8 else x_train
        x_test = x_test.astype(np.float32) / 255 if x_test.dtype == np.uint8 else x_test
    if len(classes) < 2:
        raise DataError(f"the training labels hold {len(classes)} class; a classifier needs at least 2")
    kw = dict(name=name, x_train=to_tensor(x_train), y_train=to_tensor(y_train), x_test=to_tensor(x_test),
              y_test=to_tensor(y_test), num_classes=len(classes))
    if "classes" in {f.name for f in dataclasses.fields(TensorData)}:
        return TensorData(**kw, classes=list(classes))
    data = TensorData(**kw)
    data.classes = list(classes)  # until TensorData has the field (a plain attribute; replace() drops it)
    return data


def check_pair(x: np.ndarray, y: np.ndarray, wx: str, wy: str) -> None:
    if len(x) != len(y):
        raise DataError(f"{wx} holds {len(x)} samples but {wy} {len(y)} labels; give one label per sample")


# ---------------------------------------------------------------- dataset.name: arrays


def _open(path: Path, mmap: bool) -> dict[str, Callable[[], np.ndarray]]:
    """Loaders by key of an .npz file or a folder of .npy files."""
    if path.is_dir():
        files = {p.stem: p for p in sorted(path.glob("*.npy"))}

        def load(p: Path):
            def get():
                try:
                    return np.load(p, mmap_mode="c" if mmap and p.stem.startswith("x") else None,
                                   allow_pickle=False)
                except (OSError, ValueError, EOFError) as e:
                    raise DataError(f"{p}: not a readable .npy array ({one_line(e)}); save it with np.save "
                                    "(no object arrays)") from None
            return get

        return {k: load(p) for k, p in files.items()}
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise DataError(f"{path} holds one array, not an .npz archive; save x_train, y_train, x_test, y_test "
                            "(or x, y) with np.savez, or give a folder of x_train.npy, ... files")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable .npz archive ({one_line(e)}); save the arrays with np.savez "
                        "(no object arrays)") from None

    def member(k: str):
        def get():
            try:
                return npz[k]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
                raise DataError(f"{path}: cannot read {k!r} ({one_line(e)}); save the arrays with np.savez "
                                "(no object arrays)") from None
        return get

    return {k: member(k) for k in npz.files}


def load_arrays(cfg) -> TensorData:
    path = Path(cfg.path).expanduser()
    if not path.exists():
        raise DataError(f"dataset path {path} does not exist; set dataset.path to an .npz file or a folder of "
                        ".npy files")
    keys = _open(path, False)
    present = ", ".join(sorted(keys)) or "nothing"
    if any(k in keys for k in PAIRED_KEYS):
        return load_paired(cfg.name, keys, path)
    split = all(k in keys for k in SPLIT_KEYS)
    if not split:
        whole = all(k in keys for k in WHOLE_KEYS)
        if not whole:
            want = WHOLE_KEYS if any(k in keys for k in WHOLE_KEYS) and not any(k in keys for k in SPLIT_KEYS) \
                else SPLIT_KEYS
            missing = next(k for k in want if k not in keys)
            raise DataError(f"{path} has no {missing!r} (found: {present}); give x_train, y_train, x_test, y_test, "
                            "or x, y with dataset.test_fraction")
        if cfg.test_fraction is None:
            raise DataError(f"{path} holds x, y but no test set; set dataset.test_fraction (e.g. 0.2) to hold out "
                            "a stratified test set, or give x_train, y_train, x_test, y_test")
    elif cfg.test_fraction is not None:
        raise DataError(f"{path} already holds a test set (x_test, y_test); remove dataset.test_fraction")
    folder = path.is_dir()
    xs = ("x_train", "x_test") if split else ("x",)
    if folder:  # header only: decide the storage from the inputs' size
        mmap = use_mmap(cfg.storage, _npy_bytes(path, xs))
        keys = _open(path, mmap)
    else:
        mmap = False
    where = (lambda k: f"{path}/{k}.npy") if folder else (lambda k: f"{path}['{k}']")
    if split:
        raw = {k: keys[k]() for k in SPLIT_KEYS}
        xtr, xte = as_inputs(raw["x_train"], where("x_train")), as_inputs(raw["x_test"], where("x_test"))
        check_pair(xtr, raw["y_train"], where("x_train"), where("y_train"))
        check_pair(xte, raw["y_test"], where("x_test"), where("y_test"))
        ytr, yte, classes = encode_labels(raw["y_train"], raw["y_test"], where("y_train"), where("y_test"))
    else:
        x = as_inputs(keys["x"](), where("x"))
        y = keys["y"]()
        check_pair(x, y, where("x"), where("y"))
        yall, _, classes = encode_labels(y, np.zeros(0, np.int64), where("y"), where("y"))
        tr, te = stratified_split(yall, cfg.test_fraction, cfg.split_seed, where("y"))
        xtr, xte, ytr, yte = x[tr], x[te], yall[tr], yall[te]
    if not mmap:
        xtr, xte = np.ascontiguousarray(xtr), np.ascontiguousarray(xte)
    return make_data(cfg.name, xtr, ytr, xte, yte, classes)


def load_paired(name: str, keys: dict[str, Callable[[], np.ndarray]], path: Path) -> TensorData:
    """Paired arrays: each view checked like any input (``as_inputs``), stored as one row per pair
    (view A's values, then view B's, ``data/paired.py``); uint8 when both views are uint8 images,
    else float32 in the views' own ranges (uint8 views / 255). Groups default to one per pair."""
    where = (lambda k: f"{path}/{k}.npy") if path.is_dir() else (lambda k: f"{path}['{k}']")
    missing = [k for k in PAIRED_KEYS if k not in keys]
    if missing:
        raise DataError(f"{path} holds paired views but no {missing[0]!r} (found: {', '.join(sorted(keys))}); give "
                        "a_train, b_train, a_test, b_test (and optionally group_train, group_test)")
    parts, views = {}, None
    for split in ("train", "test"):
        a, b = (as_inputs(keys[f"{v}_{split}"](), where(f"{v}_{split}")) for v in "ab")
        if len(a) != len(b):
            raise DataError(f"{where('a_' + split)} has {len(a)} items but {where('b_' + split)} {len(b)}; give one "
                            "view B per view A (repeat an image for each of its captions, with group ids)")
        shapes = (tuple(a.shape[1:]), tuple(b.shape[1:]))
        if views not in (None, shapes):
            raise DataError(f"the training views have shapes {views} but the test views {shapes}; give both the same")
        views = shapes
        both_uint8 = a.dtype == np.uint8 and b.dtype == np.uint8
        flat = [v.reshape(len(v), -1) if both_uint8 else
                (v.astype(np.float32) / 255 if v.dtype == np.uint8 else v).reshape(len(v), -1) for v in (a, b)]
        x = np.ascontiguousarray(np.concatenate(flat, axis=1))
        key = f"group_{split}"
        groups = keys[key]() if key in keys else np.arange(len(a))
        groups = _as_index(_label_array(groups, where(key)), where(key)) if key in keys else groups
        if len(groups) != len(a):
            raise DataError(f"{where(key)} has {len(groups)} ids for {len(a)} pairs; give one group id per pair")
        parts[split] = (x, groups.astype(np.int64))
    return TensorData(name, to_tensor(parts["train"][0]), to_tensor(parts["train"][1]), to_tensor(parts["test"][0]),
                      to_tensor(parts["test"][1]), num_classes=0, views=views)


def _npy_bytes(path: Path, keys: Sequence[str]) -> int:
    """The size of the arrays ``path/<key>.npy``, from their headers (0 if one is unreadable: the
    real load reports it)."""
    try:
        return sum(np.load(path / f"{k}.npy", mmap_mode="r").nbytes for k in keys)
    except (OSError, ValueError, EOFError):
        return 0
