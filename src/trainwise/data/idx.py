"""Reader for IDX files, the array format of MNIST and Fashion-MNIST.

Format (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"): two zero bytes,
a type code byte, a byte with the number of dimensions, one big-endian uint32 per
dimension, then the values in C order, big-endian. Files may be gzip-compressed
(detected from the content, not the name). Every problem is raised as a one-line
``DataError`` naming the file and the fix.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

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

_FIX = (
    "delete it and download it again (or, if it came from the Debian package, "
    "reinstall it: apt-get install --reinstall dataset-fashion-mnist)"
)


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head != _GZIP_MAGIC:
                return f.read()
            with gzip.GzipFile(fileobj=f, mode="rb") as gz:
                return gz.read()
    except FileNotFoundError:
        raise DataError(f"{path}: IDX file not found; check the path or download the dataset again") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise DataError(f"{path}: corrupt or truncated gzip stream ({reason}); {_FIX}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read IDX file ({e.strerror or e}); check the file's permissions") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip) into a native-endian, writable numpy array."""
    path = Path(path)
    data = _read_bytes(path)
    magic = f"0x{data[:4].hex()}" if data else "none: the file is empty"
    if (
        len(data) < 4
        or data[0] != 0
        or data[1] != 0
        or data[2] not in _DTYPES
        or not 1 <= data[3] <= _MAX_DIMS
    ):
        raise DataError(
            f"{path}: not an IDX file (magic number {magic}); expected 0x0000TTDD with a type code "
            f"TT in 08/09/0B/0C/0D/0E and 1-4 dimensions DD; re-download it or point the loader at "
            f"the original .gz files"
        )
    dtype = np.dtype(_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path}: truncated IDX file: header needs {header} bytes, the file has {len(data)}; {_FIX}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        what = "truncated IDX file" if len(data) < expected else "IDX file longer than declared"
        raise DataError(
            f"{path}: {what}: the header declares shape {shape} ({expected} bytes uncompressed), "
            f"the file has {len(data)} bytes; {_FIX}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)
