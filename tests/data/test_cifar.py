"""CIFAR-10/100 loader on tiny archives in the official "python version" layout."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

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


def members(name: str) -> dict[str, bytes]:
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
    return {f"{spec.folder}/{k}": pickle.dumps(v, protocol=2) for k, v in out.items()}


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
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    expected = first[b"data"][0].reshape(3, 32, 32).astype(np.float32) / 255
    np.testing.assert_allclose(data.x_train[0].numpy(), expected, rtol=1e-6)
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
