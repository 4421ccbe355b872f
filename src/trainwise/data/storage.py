"""Where a dataset's inputs live: in RAM, or in memory-mapped ``.npy`` files (``dataset.storage``).

``apply_storage(data, storage, cache_dir)``:

* ``memory``: the inputs are tensors in RAM (an input that is a memory-mapped file is read in).
* ``mmap``: each input (``x_train``, ``x_val``, ``x_test``) lives in a memory-mapped ``.npy`` file
  and only the gathered batches are read: ``x[idx]`` on a mapped tensor copies just those rows.
  An input held in RAM is written once, in chunks, to ``<cache>/mmap/<content hash>.npy`` (reused
  by every later run on the same data); an input that already is a mapped file (a user's
  ``np.load(..., mmap_mode="r")`` array) stays where it is.
* ``auto``: ``mmap`` when the inputs take more than ``AUTO_SHARE`` (a quarter) of the RAM, or
  already are mapped files; else ``memory``.

Labels always stay in RAM (8 bytes a sample). The mapping is copy-on-write (``mode="c"``): nothing
is ever written back to a file.

Pages of a mapped file that the process has read count in its resident set (RSS) although the
kernel may drop them at any time. To keep the resident set of a long run bounded, readers report
what they read (``note_read``); once a mapping larger than ``RESIDENT_CAP`` has had that much read
since the last release, its pages are released (``madvise(MADV_DONTNEED)``); they stay in the
page cache, so reading them again costs no disk access while RAM allows.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import shutil
import uuid
import warnings
import weakref
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

STORAGES = ("auto", "memory", "mmap")
AUTO_SHARE = 0.25  # auto: mmap when the inputs take more than this share of the RAM
RESIDENT_CAP = 128 << 20  # release a mapping's resident pages after about this many bytes read
FAULT_AROUND = 64 << 10  # the kernel maps up to this many bytes around each page fault
CHUNK_BYTES = 64 << 20  # chunk size of copies and hashes
INPUTS = ("x_train", "x_val", "x_test")


@dataclass
class _Mapped:
    ref: weakref.ref  # the tensor storage wrapping the mapping
    mm: mmap.mmap | None  # the mapping (for madvise)
    nbytes: int
    source: str  # "path:offset:size:mtime": names the file's bytes (for cache keys of subsets)
    touched: int = 0


_MAPPED: dict[int, _Mapped] = {}  # storage data pointer -> the mapping behind it


def _entry(t: torch.Tensor) -> _Mapped | None:
    if t.device.type != "cpu":
        return None
    st = t.untyped_storage()
    e = _MAPPED.get(st.data_ptr())
    return e if e is not None and e.ref() is st else None


def _register(arr: np.memmap, source: str) -> torch.Tensor:
    with warnings.catch_warnings():  # mode "r" arrays are read-only; nothing writes to inputs
        warnings.filterwarnings("ignore", message=".*not writable.*")
        t = torch.from_numpy(arr)
    st = t.untyped_storage()
    key = st.data_ptr()

    def forget(_ref, key=key):
        if _MAPPED.get(key) is entry:
            del _MAPPED[key]

    entry = _Mapped(weakref.ref(st, forget), getattr(arr, "_mmap", None), arr.nbytes, source)
    _MAPPED[key] = entry
    return t


def _file_mapping(addr: int, nbytes: int) -> tuple[str, int] | None:
    """(file path, file offset of ``addr``) when [addr, addr + nbytes) lies in a mapping of one
    file in this process (Linux ``/proc/self/maps``); else None."""
    try:
        with open("/proc/self/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    areas = []
    for line in lines:
        parts = line.split(maxsplit=5)
        lo, hi = (int(v, 16) for v in parts[0].split("-"))
        areas.append((lo, hi, int(parts[2], 16), parts[5] if len(parts) == 6 else ""))
    for i, (lo, hi, off, path) in enumerate(areas):
        if not lo <= addr < hi:
            continue
        if not path.startswith("/") or path.endswith(" (deleted)"):
            return None
        end = hi
        for lo2, hi2, off2, path2 in areas[i + 1:]:  # one mapping may be split into several areas
            if end >= addr + nbytes or lo2 != end or path2 != path or off2 != off + (lo2 - lo):
                break
            end = hi2
        return (path, off + (addr - lo)) if end >= addr + nbytes else None
    return None


def _source(path: str | Path, offset: int) -> str:
    st = os.stat(path)
    return f"{os.path.realpath(path)}:{offset}:{st.st_size}:{st.st_mtime_ns}"


def _np_dtype(dtype: torch.dtype) -> np.dtype | None:
    try:
        return torch.empty(0, dtype=dtype).numpy().dtype
    except (TypeError, RuntimeError):
        return None


def is_mapped(t: torch.Tensor | None) -> bool:
    """Whether ``t`` is a CPU tensor whose data lies in a memory-mapped file."""
    if t is None or t.device.type != "cpu":
        return False
    if _entry(t) is not None:
        return True
    return t.numel() > 0 and _file_mapping(t.data_ptr(), t.numel() * t.element_size()) is not None


def adopt(t: torch.Tensor) -> torch.Tensor | None:
    """``t`` as a registered mapped tensor (one trainwise can release pages of): itself when it
    already is one; else, when its storage is some other mapping of a file (a user's
    ``np.load(..., mmap_mode=...)`` array, or a view of one such as NHWC -> NCHW), the same view
    of a fresh copy-on-write mapping of the same file bytes; None when it is not a mapped file."""
    if _entry(t) is not None:
        return t
    if t.device.type != "cpu" or t.numel() == 0:
        return None
    st = t.untyped_storage()
    where = _file_mapping(st.data_ptr(), st.nbytes())
    if where is None:
        return None
    path, offset = where
    try:
        arr = np.memmap(path, dtype=np.uint8, mode="c", offset=offset, shape=(st.nbytes(),))
    except (OSError, ValueError):
        return None
    raw = _register(arr, _source(path, offset))
    view = raw if t.dtype == torch.uint8 else raw.view(t.dtype)
    return view.as_strided(t.shape, t.stride(), t.storage_offset())


def note_read(t: torch.Tensor, nbytes: int) -> None:
    """Report that about ``nbytes`` of the mapped tensor ``t`` were just read; releases the
    mapping's resident pages once ``RESIDENT_CAP`` bytes were read (no-op for other tensors)."""
    e = _entry(t)
    if e is None or e.nbytes <= RESIDENT_CAP:
        return
    e.touched += nbytes
    if e.touched >= RESIDENT_CAP:
        e.touched = 0
        if e.mm is not None and hasattr(e.mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
            try:
                e.mm.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):
                pass


def row_read_bytes(t: torch.Tensor, n_rows: int) -> int:
    """What gathering ``n_rows`` scattered rows of ``t`` maps in (each row plus the kernel's fault-around)."""
    return n_rows * (t[0].numel() * t.element_size() + FAULT_AROUND) if len(t) else 0


# ---- writing .npy files


def default_cache_dir() -> Path:
    from .download import cache_dir

    return cache_dir() / "mmap"


def total_ram() -> int:
    """Bytes of RAM this process may use: the machine's, or its cgroup's limit when lower."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 1 << 62
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(f).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            ram = min(ram, int(text))
    return ram


def _chunks(t: torch.Tensor) -> range:
    row = max(t[0].numel() * t.element_size(), 1) if len(t) else 1
    return range(0, len(t), max(1, CHUNK_BYTES // row))


def content_key(t: torch.Tensor) -> str:
    """A hash of dtype, shape and bytes of ``t``, read in chunks."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
    step = _chunks(t).step
    for i in range(0, len(t), step):
        c = t[i : i + step].detach().cpu().contiguous()
        h.update(memoryview(c.numpy()).cast("B"))
        note_read(t, c.numel() * c.element_size())
    return h.hexdigest()


def _check_space(folder: Path, nbytes: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < nbytes + (64 << 20):
        raise DataError(
            f"not enough disk space in {folder} for a memory-mapped copy of the data ({nbytes >> 20} MiB needed, "
            f"{free >> 20} MiB free); free some space, point $TRAINWISE_CACHE elsewhere, or set dataset.storage: memory"
        )


def _write_npy(path: Path, shape: tuple[int, ...], dtype: np.dtype, parts) -> None:
    """Write an .npy file from ``parts`` (arrays in row order) through a temporary name, with plain
    writes (a full disk is an error, not a crash of a write through a mapping)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_space(path.parent, int(np.prod(shape)) * dtype.itemsize)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(f, header)
            for p in parts:
                f.write(memoryview(np.ascontiguousarray(p)).cast("B"))
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write the memory-mapped copy {path} ({e.strerror or e}); free some space, point "
                        "$TRAINWISE_CACHE elsewhere, or set dataset.storage: memory") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def open_npy(path: str | Path) -> torch.Tensor:
    """A (registered) tensor on a copy-on-write mapping of the .npy file ``path``."""
    arr = np.load(path, mmap_mode="c", allow_pickle=False)
    return _register(arr, _source(path, arr.offset))


def _cached(path: Path, shape, dtype) -> torch.Tensor | None:
    if not path.is_file():
        return None
    try:
        t = open_npy(path)
    except (OSError, ValueError):
        return None
    return t if tuple(t.shape) == tuple(shape) and _np_dtype(t.dtype) == dtype else None


def to_mmap(t: torch.Tensor, cache_dir: str | Path | None = None) -> torch.Tensor:
    """``t`` as a mapped tensor: itself (or the same file) when already mapped, else the
    content-addressed .npy copy in ``cache_dir`` (written once)."""
    own = adopt(t)
    if own is not None:
        return own
    dtype = _np_dtype(t.dtype)
    if dtype is None:
        raise DataError(f"dataset.storage: mmap cannot store {t.dtype} inputs; set dataset.storage: memory")
    path = Path(cache_dir or default_cache_dir()) / f"{content_key(t)}.npy"
    found = _cached(path, t.shape, dtype)
    if found is not None:
        return found
    step = _chunks(t).step
    parts = (t[i : i + step].detach().cpu().contiguous().numpy() for i in range(0, len(t), step))
    _write_npy(path, tuple(t.shape), dtype, parts)
    return open_npy(path)


def take_rows(x: torch.Tensor, idx: torch.Tensor, cache_dir: str | Path | None = None) -> torch.Tensor:
    """``x[idx]`` for a mapped ``x``, as a mapped tensor: the rows are copied in chunks into a
    cached .npy file, never all into RAM. Other tensors: plain ``x[idx]``."""
    own = adopt(x) if x.device.type == "cpu" else None
    if own is None:
        return x[idx.to(x.device)]
    e = _entry(own)
    idx = idx.to("cpu", torch.int64)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{e.source}|{own.dtype}|{tuple(own.shape)}|".encode())
    h.update(memoryview(idx.contiguous().numpy()).cast("B"))
    shape = (len(idx), *own.shape[1:])
    dtype = _np_dtype(own.dtype)
    path = Path(cache_dir or default_cache_dir()) / f"rows-{h.hexdigest()}.npy"
    found = _cached(path, shape, dtype)
    if found is not None:
        return found
    step = _chunks(own).step

    def parts():
        for i in range(0, len(idx), step):
            j = idx[i : i + step]
            yield own[j].numpy()
            note_read(own, row_read_bytes(own, len(j)))

    _write_npy(path, shape, dtype, parts())
    return open_npy(path)


# ---- the setting


def input_bytes(data) -> int:
    return sum(getattr(data, k).numel() * getattr(data, k).element_size()
               for k in INPUTS if getattr(data, k) is not None)


def resolve(data, storage: str = "auto") -> str:
    """``memory`` or ``mmap`` for this data: ``auto`` decides by size (and keeps mapped files mapped)."""
    if storage not in STORAGES:
        raise DataError(f"dataset.storage {storage!r}: use one of {', '.join(STORAGES)}")
    if storage != "auto":
        return storage
    if any(is_mapped(getattr(data, k)) for k in INPUTS):
        return "mmap"
    return "mmap" if input_bytes(data) > AUTO_SHARE * total_ram() else "memory"


def apply_storage(data, storage: str = "auto", cache_dir: str | Path | None = None):
    """``data`` (a ``TensorData``) with its inputs stored as ``storage`` says (see the module doc)."""
    how = resolve(data, storage)
    new = {}
    for k in INPUTS:
        t = getattr(data, k)
        if t is None:
            continue
        if how == "mmap":
            new[k] = to_mmap(t, cache_dir)
        elif is_mapped(t):
            new[k] = t.clone()  # read the file into RAM
    return replace(data, **new) if new else data


__all__ = ["apply_storage", "resolve", "is_mapped", "adopt", "note_read", "row_read_bytes", "take_rows",
           "to_mmap", "open_npy", "total_ram", "content_key", "STORAGES", "AUTO_SHARE", "RESIDENT_CAP"]
