"""CIFAR-10/100 loader on tiny archives in the official "python version" layout."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

import trainwise.data.cifar as cifar
from trainwise.errors import DataError

N_TRAIN = {"cifar10": 5 * 4, "cifar100": 6}
N_TEST = 3


def batch(n: int, seed: int, label_key: bytes, num_classes: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"fake batch",
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key: [int(v) for v in rng.integers(0, num_classes, n)],
        b"filenames": [b"img_%d.png" % i for i in range(n)],
    }


def members(name: str, dump: Callable[[dict], bytes] = lambda v: pickle.dumps(v, protocol=2)) -> dict[str, bytes]:
    """Relative path -> bytes of every file in the official archive, with tiny batches."""
    spec = cifar.SPECS[name]
    out = {}
    if name == "cifar10":
        for i, b in enumerate(spec.train):
            out[b] = batch(4, i, b"labels", 10)
        out[spec.test] = batch(N_TEST, 99, b"labels", 10)
        out["batches.meta"] = {b"label_names": [b"c%d" % i for i in range(10)], b"num_cases_per_batch": 4}
    else:
        for key, n, seed in (("train", N_TRAIN[name], 0), ("test", N_TEST, 99)):
            out[key] = batch(n, seed, b"fine_labels", 100)
            out[key][b"coarse_labels"] = [v // 5 for v in out[key][b"fine_labels"]]
        out["meta"] = {b"fine_label_names": [b"f%d" % i for i in range(100)], b"coarse_label_names": [b"c"] * 20}
    return {f"{spec.folder}/{k}": dump(v) for k, v in out.items()}


def make_tar(files: dict[str, bytes], folder: str | None = None, extra: list[tarfile.TarInfo] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        if folder:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return buf.getvalue()


def archive(name: str) -> bytes:
    return make_tar(members(name), cifar.SPECS[name].folder)


def extract_to(directory: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_bytes(data)
    return directory


def trust(monkeypatch, name: str, data: bytes) -> None:
    """Make ``data`` the official archive of ``name`` (its checksum goes into the table)."""
    spec = cifar.SPECS[name]
    monkeypatch.setitem(cifar.SHA256, spec.archive, hashlib.sha256(data).hexdigest())


def check(data, name: str) -> None:
    spec = cifar.SPECS[name]
    raw = members(name)
    first = pickle.loads(raw[f"{spec.folder}/{spec.train[0]}"], encoding="bytes")
    test = pickle.loads(raw[f"{spec.folder}/{spec.test}"], encoding="bytes")
    assert data.name == name and data.num_classes == spec.num_classes
    assert data.x_train.shape == (N_TRAIN[name], 3, 32, 32) and data.x_test.shape == (N_TEST, 3, 32, 32)
    assert data.x_train.dtype == torch.uint8 and data.y_train.dtype == torch.int64  # as_float: / 255
    np.testing.assert_array_equal(data.x_train[0].numpy(), first[b"data"][0].reshape(3, 32, 32))
    assert len(data.classes) == spec.num_classes
    assert data.y_test.tolist() == list(test[spec.label_key])
    assert data.y_train[: len(first[spec.label_key])].tolist() == list(first[spec.label_key])


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINWISE_CACHE", str(tmp_path / "cache"))
    for var in ("TRAINWISE_DATA", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_load_from_extracted_dir(tmp_path, name):
    d = extract_to(tmp_path / "mine", members(name))
    check(cifar.load_cifar(name, data_dir=d), name)
    check(cifar.load_cifar(name, data_dir=d / cifar.SPECS[name].folder), name)  # the folder itself


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_load_from_archive(tmp_path, monkeypatch, name):
    spec = cifar.SPECS[name]
    data = archive(name)
    trust(monkeypatch, name, data)
    d = tmp_path / "mine"
    d.mkdir()
    (d / spec.archive).write_bytes(data)
    check(cifar.load_cifar(name, data_dir=d), name)
    assert (d / spec.folder / spec.test).is_file()
    assert sorted(p.name for p in d.iterdir()) == sorted([spec.archive, spec.folder])  # no temp dirs left
    check(cifar.load_cifar(name, data_dir=d), name)


def test_archive_read_only_dir(tmp_path, monkeypatch):
    spec = cifar.SPECS["cifar10"]
    data = archive("cifar10")
    trust(monkeypatch, "cifar10", data)
    d = tmp_path / "ro"
    d.mkdir()
    (d / spec.archive).write_bytes(data)
    monkeypatch.setattr(cifar.os, "access", lambda *a, **k: False)
    check(cifar.load_cifar("cifar10", data_dir=d), "cifar10")
    assert not (d / spec.folder).exists()


def test_archive_checksum_mismatch(tmp_path):
    spec = cifar.SPECS["cifar10"]
    d = tmp_path / "mine"
    d.mkdir()
    (d / spec.archive).write_bytes(archive("cifar10"))  # not the official bytes
    with pytest.raises(DataError, match="checksum mismatch") as e:
        cifar.load_cifar("cifar10", data_dir=d)
    assert str(d / spec.archive) in str(e.value) and "\n" not in str(e.value)
    assert not (d / spec.folder).exists()


def test_env_dir(tmp_path, monkeypatch):
    extract_to(tmp_path / "env" / "cifar100", members("cifar100"))
    monkeypatch.setenv("TRAINWISE_DATA", str(tmp_path / "env"))
    check(cifar.load_cifar("cifar100"), "cifar100")


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_download(tmp_path, served, monkeypatch, name):
    root, url = served.root, served.url
    spec = cifar.SPECS[name]
    data = archive(name)
    (root / spec.archive).write_bytes(data)
    trust(monkeypatch, name, data)
    check(cifar.load_cifar(name, download=True, base_url=url), name)
    cache = tmp_path / "cache" / name
    assert (cache / spec.archive).read_bytes() == data
    assert (cache / spec.folder / cifar.MARKER).is_file()
    check(cifar.load_cifar(name, download=True, base_url=url), name)  # from the cache now
    assert served.requested == ["/" + spec.archive]


def test_download_checksum_mismatch(tmp_path, served):
    root, url = served.root, served.url
    spec = cifar.SPECS["cifar10"]
    (root / spec.archive).write_bytes(archive("cifar10"))
    with pytest.raises(DataError, match="checksum mismatch"):
        cifar.load_cifar("cifar10", download=True, base_url=url)
    cache = tmp_path / "cache" / "cifar10"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_missing_everywhere(tmp_path):
    with pytest.raises(DataError, match="cifar10 not found") as e:
        cifar.load_cifar("cifar10")
    msg = str(e.value)
    assert str(tmp_path / "cache" / "cifar10") in msg and "dataset.download: true" in msg and "\n" not in msg


def test_data_dir_without_data(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds neither"):
        cifar.load_cifar("cifar10", data_dir=tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        cifar.load_cifar("cifar10", data_dir=tmp_path / "nope")


def test_unknown_name():
    with pytest.raises(DataError, match="cifar10"):
        cifar.load_cifar("cifar1000")


def _info(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    "bad",
    [
        _info("cifar-10-batches-py/../../evil"),
        _info("/tmp/evil-absolute"),
        _info("../evil"),
        _info("cifar-10-batches-py/link", tarfile.SYMTYPE, "/etc/passwd"),
        _info("cifar-10-batches-py/hard", tarfile.LNKTYPE, "/etc/passwd"),
        _info("elsewhere/file"),
    ],
    ids=["dotdot-inside", "absolute", "dotdot", "symlink", "hardlink", "outside-folder"],
)
def test_rejects_unsafe_members(tmp_path, monkeypatch, bad):
    spec = cifar.SPECS["cifar10"]
    data = make_tar(members("cifar10"), spec.folder, extra=[bad])
    trust(monkeypatch, "cifar10", data)
    d = tmp_path / "a" / "b"
    d.mkdir(parents=True)
    (d / spec.archive).write_bytes(data)
    with pytest.raises(DataError, match="unsafe or unexpected archive member"):
        cifar.load_cifar("cifar10", data_dir=d)
    assert sorted(p.name for p in d.iterdir()) == [spec.archive]  # nothing extracted, no temp dir
    assert not (tmp_path / "evil").exists() and not (tmp_path / "a" / "evil").exists()


class _Boom:
    """Unpickling this creates a file: proof that a pickle was opened."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_cache_folder_without_marker_is_not_unpickled(tmp_path):
    spec = cifar.SPECS["cifar10"]
    proof = tmp_path / "unpickled"
    files = {k: pickle.dumps(_Boom(str(proof))) for k in members("cifar10")}
    extract_to(tmp_path / "cache" / "cifar10", files)
    with pytest.raises(DataError, match="not extracted by trainwise") as e:
        cifar.load_cifar("cifar10")
    assert "data_dir" in str(e.value)
    assert not proof.exists()
    assert (tmp_path / "cache" / "cifar10" / spec.folder).is_dir()


def test_cache_folder_replaced_by_verified_archive(tmp_path, monkeypatch):
    spec = cifar.SPECS["cifar10"]
    cache = tmp_path / "cache" / "cifar10"
    extract_to(cache, {k: b"junk" for k in members("cifar10")})  # unverified leftover
    data = archive("cifar10")
    trust(monkeypatch, "cifar10", data)
    (cache / spec.archive).write_bytes(data)
    check(cifar.load_cifar("cifar10"), "cifar10")


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"not a pickle", "not a CIFAR batch"),
        (pickle.dumps({b"labels": [1]}), "not a CIFAR batch"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}), "labels of shape"),
        (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}), r"labels outside 0\.\.9"),
        (pickle.dumps({b"data": np.zeros((1, 100), np.uint8), b"labels": [1]}), r"uint8 \(N, 3072\)"),
    ],
)
def test_malformed_batches(tmp_path, payload, match):
    spec = cifar.SPECS["cifar10"]
    d = extract_to(tmp_path / "mine", members("cifar10"))
    (d / spec.folder / "data_batch_3").write_bytes(payload)
    with pytest.raises(DataError, match=match) as e:
        cifar.load_cifar("cifar10", data_dir=d)
    assert "data_batch_3" in str(e.value) and "\n" not in str(e.value)


def test_official_checksums_pinned():
    assert cifar.SHA256 == {
        "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        "cifar-100-python.tar.gz": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    }
    assert os.path.basename(cifar.OFFICIAL_URL.rstrip("/")) == "~kriz"


class _Py2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle did for the official batches (protocol 2): bytes as Python 2
    ``str`` (SHORT_BINSTRING/BINSTRING, read back with encoding="bytes"), not ``_codecs.encode``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<I", n)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_dumps(obj: object) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue().replace(b"cnumpy._core.", b"cnumpy.core.")  # numpy 1's module names


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_loads_python2_batches(tmp_path, name):
    """Batches laid out like the official ones still load through the restricted unpickler."""
    files = members(name, py2_dumps)
    blob = files[f"{cifar.SPECS[name].folder}/{cifar.SPECS[name].test}"]
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in blob and b"U\x04data" in blob and b"_codecs" not in blob
    check(cifar.load_cifar(name, data_dir=extract_to(tmp_path / "mine", files)), name)


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize("source", ["data_dir", "env", "verified-archive"])
def test_code_in_pickle_is_refused(tmp_path, monkeypatch, source, protocol):
    """A batch whose pickle calls a function (here Path.touch) is refused before the call, wherever it is."""
    spec = cifar.SPECS["cifar10"]
    proof = tmp_path / "unpickled"
    files = members("cifar10")
    bad = batch(4, 0, b"labels", 10)
    bad[b"filenames"] = _Boom(str(proof))
    files[f"{spec.folder}/data_batch_2"] = pickle.dumps(bad, protocol=protocol)
    if source == "data_dir":
        kwargs = {"data_dir": extract_to(tmp_path / "mine", files)}
    elif source == "env":
        extract_to(tmp_path / "env" / "cifar10", files)
        monkeypatch.setenv("TRAINWISE_DATA", str(tmp_path / "env"))
        kwargs = {}
    else:
        data = make_tar(files, spec.folder)
        trust(monkeypatch, "cifar10", data)
        (tmp_path / "cache" / "cifar10").mkdir(parents=True)
        (tmp_path / "cache" / "cifar10" / spec.archive).write_bytes(data)
        kwargs = {}
    with pytest.raises(DataError, match="refuses to run code") as e:
        cifar.load_cifar("cifar10", **kwargs)
    msg = str(e.value)
    assert "data_batch_2" in msg and "asks for" in msg and "download" in msg and "\n" not in msg
    assert not proof.exists()


class _Reduce:
    def __init__(self, *reduced) -> None:
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced


@pytest.mark.parametrize(
    "data, match",
    [
        (np.array([b"x", 1], dtype=object), "not plain numbers"),
        (_Reduce(np.ndarray, ((2, 3072), np.dtype(object))), "not a CIFAR batch"),
        (_Reduce(bytes, (10**6,)), "not a CIFAR batch"),
        (_Reduce(__import__("codecs").encode, (b"eJwLAQAAVABU", "base64")), "codec 'base64'"),
    ],
    ids=["object-array", "ndarray-call", "bytes-call", "other-codec"],
)
def test_numpy_and_builtins_only_as_pickled(tmp_path, data, match):
    """The allowed globals build only what pickles of plain arrays and bytes build: no object arrays
    (numpy allocates and fills them at any forged shape), no calls with other arguments."""
    spec = cifar.SPECS["cifar10"]
    d = extract_to(tmp_path / "mine", members("cifar10"))
    payload = pickle.dumps({b"data": data, b"labels": [1, 2]}, protocol=2)
    (d / spec.folder / "test_batch").write_bytes(payload)
    with pytest.raises(DataError, match=match) as e:
        cifar.load_cifar("cifar10", data_dir=d)
    assert "test_batch" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("limit", ["MAX_MEMBER_BYTES", "MAX_ARCHIVE_BYTES"])
def test_oversized_archive_members_are_refused(tmp_path, monkeypatch, limit):
    spec = cifar.SPECS["cifar10"]
    data = archive("cifar10")
    trust(monkeypatch, "cifar10", data)
    monkeypatch.setattr(cifar, limit, 3 * 3072 if limit == "MAX_MEMBER_BYTES" else 3 * 4 * 3072)
    d = tmp_path / "mine"
    d.mkdir()
    (d / spec.archive).write_bytes(data)
    with pytest.raises(DataError, match="exceeds") as e:
        cifar.load_cifar("cifar10", data_dir=d)
    assert spec.archive in str(e.value) and "\n" not in str(e.value)
    assert sorted(p.name for p in d.iterdir()) == [spec.archive]  # nothing extracted, no temp dir
