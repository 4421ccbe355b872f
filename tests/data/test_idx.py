"""IDX reader: round trip, wrong magic, truncation, corrupt gzip, gzip bombs."""

from __future__ import annotations

import gzip
import struct
import tracemalloc

import numpy as np
import pytest

from trainwise.data.idx import read_idx
from trainwise.errors import DataError


def idx_bytes(arr: np.ndarray) -> bytes:
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
    code = codes[arr.dtype.type]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [True, False])
def test_round_trip(tmp_path, dtype, compress):
    arr = (np.arange(30) - (0 if dtype is np.uint8 else 7)).astype(dtype).reshape(2, 3, 5)
    raw = idx_bytes(arr)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.flags.writeable
    np.testing.assert_array_equal(out, arr)


def test_one_dimensional(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.array([3, 1, 4], dtype=np.uint8))))
    np.testing.assert_array_equal(read_idx(path), [3, 1, 4])


@pytest.mark.parametrize(
    "head",
    [b"<!DOCTYPE html>", b"\x00\x00\x0a\x01\x00\x00\x00\x01x", b"\x00\x00\x08\x05", b"\x01\x00\x08\x01", b"\x00"],
)
def test_wrong_magic(tmp_path, head):
    path = tmp_path / "bad-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(head + b"\x00" * 16))
    with pytest.raises(DataError, match="not an IDX file") as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and "magic number 0x" in msg and "\n" not in msg


def test_truncated(tmp_path):
    raw = idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match="truncated") as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and str(len(raw)) in msg and str(len(raw) - 100) in msg
    assert "dataset-fashion-mnist" in msg and "\n" not in msg


def test_truncated_header(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(idx_bytes(np.zeros(3, dtype=np.uint8)) + b"junk")
    with pytest.raises(DataError, match="longer than declared"):
        read_idx(path)


@pytest.mark.parametrize("cut", ["truncated-stream", "garbage"])
def test_corrupt_gzip(tmp_path, cut):
    gz = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    if cut == "truncated-stream":
        path.write_bytes(gz[: len(gz) // 2])
    else:
        path.write_bytes(gz[:10] + bytes(b ^ 0x5A for b in gz[10:]))
    with pytest.raises(DataError, match="gzip") as e:
        read_idx(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "nope.gz")


def test_gzip_bomb_is_refused_with_little_memory(tmp_path):
    """A valid 10x28x28 file followed by 300 MB of zeros (1.3 MB gzip'd) is refused after reading what
    the header declares, without decompressing the rest."""
    arr = np.arange(10 * 28 * 28, dtype=np.uint8).reshape(10, 28, 28)
    good, bomb = tmp_path / "good-idx3-ubyte.gz", tmp_path / "bomb-idx3-ubyte.gz"
    good.write_bytes(gzip.compress(idx_bytes(arr)))
    with gzip.open(bomb, "wb", compresslevel=1) as f:
        f.write(idx_bytes(arr))
        zeros = bytes(1 << 20)
        for _ in range(300):
            f.write(zeros)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="longer than declared") as e:
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak {peak >> 20} MiB while refusing the bomb"
    assert str(bomb) in str(e.value) and "(10, 28, 28)" in str(e.value) and "\n" not in str(e.value)
    np.testing.assert_array_equal(read_idx(good), arr)


def test_declared_size_over_limit(tmp_path):
    path = tmp_path / "huge.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + struct.pack(">3I", 60000, 2**16, 2**16) + b"\x00" * 64))
    with pytest.raises(DataError, match="more than the 1024 MiB") as e:
        read_idx(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
