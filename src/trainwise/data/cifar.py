"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009) from the official "python version".

Source: https://www.cs.toronto.edu/~kriz/cifar.html. A lookup directory (``data_dir``,
``$TRAINWISE_DATA/<name>``, the download cache) holds either the extracted folder
(``cifar-10-batches-py/`` or ``cifar-100-python/``) or the official archive, which is
SHA-256-verified and then extracted next to itself.

The batches are pickles. They are read by ``_BatchUnpickler``, which builds only dicts,
lists, strings, numbers and plain numpy arrays and refuses every other global, so a
forged batch cannot run code. On top of that, a pickle is only opened when it comes from
a verified archive or from a directory the user named (``data_dir`` or
``$TRAINWISE_DATA``); folders in the cache count only with the marker written by a
verified extraction. Archives are bounded too: a member larger than ``MAX_MEMBER_BYTES``
or members totalling more than ``MAX_ARCHIVE_BYTES`` are refused before extraction.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np
import torch

from ..errors import DataError
from .base import TensorData
from .download import cache_dir, download_file, one_line, search_dirs, sha256_file

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/"
MARKER = ".trainwise-verified"
# Each official archive unpacks to about 186 MB, the largest member being CIFAR-100's ``train``
# (about 155 MB); anything far beyond that is not CIFAR (or is a tar bomb).
MAX_MEMBER_BYTES = 256 << 20
MAX_ARCHIVE_BYTES = 512 << 20


@dataclass(frozen=True)
class _Spec:
    folder: str
    archive: str
    train: tuple[str, ...]
    test: str
    label_key: bytes
    num_classes: int


SPECS = {
    "cifar10": _Spec(
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        b"labels",
        10,
    ),
    "cifar100": _Spec("cifar-100-python", "cifar-100-python.tar.gz", ("train",), "test", b"fine_labels", 100),
}

# Class names by label: CIFAR-10's batches.meta ``label_names`` and CIFAR-100's meta ``fine_label_names``.
CLASSES = {
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "cifar100": (
        "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
        "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
        "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster "
        "man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
        "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
        "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger "
        "tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
    ).split(),
}

# SHA-256 of the official archives (the ones Keras pins; torchvision pins their MD5s
# c58f30108f718f92721af3b95e74349a and eb9058c3a382ffc7106e4002c42a8d85).
SHA256 = {
    "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "cifar-100-python.tar.gz": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
}

_Reader = Callable[[str], bytes]


def _has_batches(folder: Path, spec: _Spec) -> bool:
    return all((folder / n).is_file() for n in (*spec.train, spec.test))


def _members(tar: tarfile.TarFile, archive: Path, spec: _Spec) -> Iterator[tuple[tarfile.TarInfo, PurePosixPath]]:
    """Each member with its checked path, refusing oversized members before any of their bytes are read."""
    total = 0
    for member in tar:
        rel = _member_name(archive, member, spec)
        total += member.size
        if member.size > MAX_MEMBER_BYTES or total > MAX_ARCHIVE_BYTES:
            raise DataError(
                f"{archive}: member {member.name!r} ({member.size} bytes, {total} so far) exceeds the "
                f"{MAX_MEMBER_BYTES >> 20} MiB per file / {MAX_ARCHIVE_BYTES >> 20} MiB total a CIFAR archive "
                f"holds; refusing to extract — delete the archive and download it again"
            )
        yield member, rel


def _member_name(archive: Path, member: tarfile.TarInfo, spec: _Spec) -> PurePosixPath:
    """The member's path, refusing anything that could land outside the extraction folder."""
    raw = member.name.replace("\\", "/")
    p = PurePosixPath(raw)
    if (
        raw.startswith("/")
        or ".." in raw.split("/")
        or not (member.isfile() or member.isdir())
        or p.parts[:1] != (spec.folder,)
    ):
        raise DataError(
            f"{archive}: unsafe or unexpected archive member {member.name!r} (absolute path, '..', link "
            f"or outside {spec.folder}/); refusing to extract — delete the archive and download it again"
        )
    return p


def _extract(archive: Path, spec: _Spec, sha: str, owned: bool) -> Path:
    """Extract a verified archive next to itself; the folder appears complete or not at all."""
    parent = archive.parent
    final = parent / spec.folder
    if final.exists() and not owned:
        raise DataError(
            f"{final} exists but is incomplete, so {archive.name} cannot be extracted there; "
            f"delete or complete {final}"
        )
    try:
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=".extract-"))
    except OSError as e:
        raise DataError(f"cannot extract {archive} ({e.strerror or e}); make {parent} writable") from None
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member, rel in _members(tar, archive, spec):
                out = tmp.joinpath(*rel.parts)
                if member.isdir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(out, "wb") as f:
                    shutil.copyfileobj(src, f)
        folder = tmp / spec.folder
        folder.mkdir(exist_ok=True)
        (folder / MARKER).write_text(sha + "\n")
        if final.exists():
            shutil.rmtree(final)  # an unverified or incomplete leftover in our own cache
        os.replace(folder, final)
        return final
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{archive}: corrupt archive ({one_line(e)}); delete it and download it again") from None
    except OSError as e:
        raise DataError(f"cannot extract {archive} into {parent} ({e.strerror or e}); free disk space") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _archive_reader(archive: Path, spec: _Spec) -> _Reader:
    """Read the batches straight from a verified archive (for a directory we cannot write to)."""
    blobs = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member, rel in _members(tar, archive, spec):
                if member.isfile():
                    blobs[rel.name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(f"{archive}: corrupt archive ({one_line(e)}); delete it and download it again") from None
    return lambda name: blobs[name]


def _verify(archive: Path, sha: str) -> None:
    got = sha256_file(archive)
    if got != sha:
        raise DataError(
            f"checksum mismatch for {archive}: expected {sha}, got {got}; the archive is corrupt or not the "
            f"official one — delete it and download it again (or extract it yourself and set dataset.data_dir)"
        )


def _from_archive(archive: Path, spec: _Spec, sha: str, owned: bool) -> tuple[_Reader, str]:
    _verify(archive, sha)
    if not os.access(archive.parent, os.W_OK):
        return _archive_reader(archive, spec), str(archive)
    folder = _extract(archive, spec, sha, owned)
    return _dir_reader(folder), str(folder)


def _dir_reader(folder: Path) -> _Reader:
    return lambda name: (folder / name).read_bytes()


def _find(name: str, spec: _Spec, data_dir: str | os.PathLike | None) -> tuple[_Reader, str] | None:
    """A reader for the batches and where they are, or None when there are none."""
    sha = SHA256[spec.archive]
    dirs = search_dirs(name, data_dir, [])
    user_dirs = dirs if data_dir is not None else dirs[:-1]  # the last one is the cache
    for d in user_dirs:
        for folder in (d / spec.folder, d):
            if _has_batches(folder, spec):
                return _dir_reader(folder), str(folder)
        if (d / spec.archive).is_file():
            return _from_archive(d / spec.archive, spec, sha, owned=False)
    if data_dir is not None:
        raise DataError(
            f"data_dir {dirs[0]} holds neither {spec.folder}/ with {', '.join((*spec.train, spec.test))} "
            f"nor {spec.archive}; put the CIFAR python version there or fix dataset.data_dir"
        )
    cache = cache_dir() / name
    folder = cache / spec.folder
    marker = folder / MARKER
    if _has_batches(folder, spec) and marker.is_file() and marker.read_text().strip() == sha:
        return _dir_reader(folder), str(folder)
    if (cache / spec.archive).is_file():
        return _from_archive(cache / spec.archive, spec, sha, owned=True)
    if _has_batches(folder, spec):
        raise DataError(
            f"{folder} was not extracted by trainwise from a verified archive, so its pickles are not opened; "
            f"move it to $TRAINWISE_DATA/{name} or set dataset.data_dir to trust it, or put {spec.archive} in {cache}"
        )
    return None


class _PlainArray(np.ndarray):
    """The arrays ``_BatchUnpickler`` builds: their pickled state must be raw bytes of a dtype without
    Python objects (numpy would allocate and fill an object array of any forged shape, or crash)."""

    def __setstate__(self, state):
        dtype, raw = state[-3], state[-1]  # (version, shape, dtype, is_fortran, raw); version optional
        if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(raw, bytes):
            raise pickle.UnpicklingError("an ndarray that is not plain numbers")
        super().__setstate__(state)


# numpy's own reconstructors, wherever this numpy version keeps them.
_NP_RECONSTRUCT = np.zeros(0).__reduce__()[0]
_NP_SCALAR = np.uint8(0).__reduce__()[0]
_NP_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]


# What ``numpy.ndarray`` unpickles to: pickles only pass it to ``_reconstruct``, and calling the real
# class (``ndarray((10**9,), object)``) would allocate whatever the pickle asks for.
_NDARRAY = object()


def _reconstruct(subtype, shape, dtype):
    """numpy's ``_reconstruct`` as numpy pickles call it: an empty array that ``__setstate__`` fills."""
    if subtype is not _NDARRAY or tuple(shape) != (0,):
        raise pickle.UnpicklingError("an ndarray reconstruction numpy does not write")
    return _NP_RECONSTRUCT(_PlainArray, (0,), dtype)


def _scalar(dtype, *args):
    """numpy's ``scalar`` (a numpy int such as ``np.int64(3)``), for dtypes without Python objects."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("a numpy scalar that is not a plain number")
    return _NP_SCALAR(dtype, *args)


def _latin1(text, encoding):
    """``_codecs.encode`` as Python 3 pickles bytes at protocol 2 (any other codec is refused)."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"codec {encoding!r}")
    return text.encode("latin1")


class _Refused(pickle.UnpicklingError):
    pass


class _BatchUnpickler(pickle.Unpickler):
    """Builds what CIFAR batches hold (dicts, lists, bytes, ints; numpy arrays and scalars, pickled by
    Python 2 as the official files are, or by Python 3 at any protocol) and refuses every other global."""

    _ALLOWED = {
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1,  # bytes, protocol 2
        ("__builtin__", "bytes"): lambda: b"",  # b"" at protocol 2
        # numpy 1 pickles name numpy.core, numpy 2 numpy._core; _frombuffer is protocol 5's ndarray.
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.multiarray", "scalar"): _scalar,
        ("numpy._core.multiarray", "scalar"): _scalar,
        ("numpy.core.numeric", "_frombuffer"): _NP_FROMBUFFER,  # refuses object dtypes itself
        ("numpy._core.numeric", "_frombuffer"): _NP_FROMBUFFER,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def _batch(read: _Reader, where: str, name: str, spec: _Spec) -> tuple[np.ndarray, np.ndarray]:
    fix = "replace it with the official CIFAR python version"
    try:
        blob = read(name)
    except (OSError, KeyError) as e:
        raise DataError(f"{where}/{name}: cannot read the batch ({one_line(e)}); {fix}") from None
    try:
        d = _BatchUnpickler(io.BytesIO(blob), encoding="bytes").load()
        if not isinstance(d, dict):
            raise TypeError(f"a pickled {type(d).__name__}, not a dict")
        data, labels = d[b"data"], np.asarray(d[spec.label_key])
    except _Refused as e:
        raise DataError(
            f"{where}/{name}: not a CIFAR batch: the pickle asks for {e}, and trainwise refuses to run code "
            f"from data files; delete it and download the official CIFAR python version again, or point "
            f"dataset.data_dir elsewhere"
        ) from None
    except Exception as e:  # malformed pickles raise many kinds of errors
        raise DataError(f"{where}/{name}: not a CIFAR batch ({type(e).__name__}: {one_line(e)}); {fix}") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{where}/{name}: b'data' is not a uint8 (N, 3072) array; {fix}")
    data = np.asarray(data)  # a plain ndarray again
    if labels.ndim != 1 or len(labels) != len(data) or labels.dtype.kind not in "iu":
        raise DataError(f"{where}/{name}: {len(data)} images but labels of shape {labels.shape}; {fix}")
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise DataError(f"{where}/{name}: labels outside 0..{spec.num_classes - 1}; {fix}")
    return data, labels.astype(np.int64)


def _tensors(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    data = np.concatenate([p[0] for p in parts]).reshape(-1, 3, 32, 32)
    x = torch.from_numpy(data)  # uint8; as_float gives the [0, 1] input
    return x, torch.from_numpy(np.concatenate([p[1] for p in parts]))


def load_cifar(
    name: str,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    base_url: str | None = None,
) -> TensorData:
    """Load CIFAR-10 (``"cifar10"``) or CIFAR-100 (``"cifar100"``, fine labels) as (N, 3, 32, 32) uint8
    images (``as_float``: [0, 1]) and int64 labels."""
    if name not in SPECS:
        raise DataError(f"unknown CIFAR variant {name!r}; use 'cifar10' or 'cifar100'")
    spec = SPECS[name]
    found = _find(name, spec, data_dir)
    if found is None:
        if not download:
            looked = ", ".join(str(d) for d in search_dirs(name, None, []))
            raise DataError(
                f"{name} not found (looked in: {looked}); put {spec.archive} or the extracted {spec.folder}/ "
                f"in $TRAINWISE_DATA/{name} or set dataset.data_dir, or set dataset.download: true"
            )
        archive = cache_dir() / name / spec.archive
        url = (base_url or OFFICIAL_URL).rstrip("/") + "/" + spec.archive
        download_file(url, archive, SHA256[spec.archive], timeout=60)
        found = _from_archive(archive, spec, SHA256[spec.archive], owned=True)
    read, where = found
    x_train, y_train = _tensors([_batch(read, where, b, spec) for b in spec.train])
    x_test, y_test = _tensors([_batch(read, where, spec.test, spec)])
    return TensorData(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=spec.num_classes,
        classes=list(CLASSES[name]),
    )
