"""Reader for IDX files, the array format of MNIST and Fashion-MNIST.

Format (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"): two zero bytes,
a type code byte, a byte with the number of dimensions, one big-endian uint32 per
dimension, then the values in C order, big-endian. Files may be gzip-compressed
(detected from the content, not the name) and are decompressed only up to the size
the header declares. Every problem is raised as a one-line ``DataError`` naming the
file and the fix.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import DataError

# IDX type codes; 0x0A is not defined by the format.
_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
_MAX_DIMS = 4
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
# The most one file may declare: Fashion-MNIST's largest is 47 MB uncompressed. Reading stops at
# what the header declares, so a gzip bomb costs at most this much memory.
MAX_BYTES = 1 << 30

_FIX = (
    "delete it and download it again (or, if it came from the Debian package, "
    "reinstall it: apt-get install --reinstall dataset-fashion-mnist)"
)


def _read_array(path: Path, src: BinaryIO) -> np.ndarray:
    """Parse the header, then read exactly the bytes it declares: never more (a gzip bomb stops
    after one byte too many), and never more than ``MAX_BYTES``."""
    head = src.read(4)
    magic = f"0x{head.hex()}" if head else "none: the file is empty"
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES or not 1 <= head[3] <= _MAX_DIMS:
        raise DataError(
            f"{path}: not an IDX file (magic number {magic}); expected 0x0000TTDD with a type code "
            f"TT in 08/09/0B/0C/0D/0E and 1-4 dimensions DD; re-download it or point the loader at "
            f"the original .gz files"
        )
    dtype = np.dtype(_DTYPES[head[2]])
    ndim = head[3]
    header = 4 + 4 * ndim
    dims = src.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(
            f"{path}: truncated IDX file: header needs {header} bytes, the file has {4 + len(dims)}; {_FIX}"
        )
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    size = math.prod(shape) * dtype.itemsize
    declares = f"the header declares shape {shape} ({header + size} bytes uncompressed)"
    if size > MAX_BYTES:
        raise DataError(f"{path}: {declares}, more than the {MAX_BYTES >> 20} MiB trainwise reads; {_FIX}")
    data = bytearray()
    while len(data) < size:
        chunk = src.read(min(_CHUNK, size - len(data)))
        if not chunk:
            raise DataError(
                f"{path}: truncated IDX file: {declares}, the file has {header + len(data)} bytes; {_FIX}"
            )
        data += chunk
    if src.read(1):
        raise DataError(f"{path}: IDX file longer than declared: {declares}, the file has more; {_FIX}")
    arr = np.frombuffer(data, dtype=dtype).reshape(shape)  # writable: it views the bytearray
    return arr if dtype.isnative else arr.byteswap(inplace=True).view(dtype.newbyteorder())


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip) into a native-endian, writable numpy array."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            compressed = f.read(2) == _GZIP_MAGIC
            f.seek(0)
            if not compressed:
                return _read_array(path, f)
            with gzip.GzipFile(fileobj=f, mode="rb") as gz:
                return _read_array(path, gz)
    except FileNotFoundError:
        raise DataError(f"{path}: IDX file not found; check the path or download the dataset again") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise DataError(f"{path}: corrupt or truncated gzip stream ({reason}); {_FIX}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read IDX file ({e.strerror or e}); check the file's permissions") from None
