"""Cache directory, verified downloads from a local HTTP server, and the lookup order."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from trainwise.data.download import cache_dir, download_file, locate
from trainwise.errors import DataError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("TRAINWISE_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "trainwise"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "trainwise"
    monkeypatch.setenv("TRAINWISE_CACHE", str(tmp_path / "tw"))
    assert cache_dir() == tmp_path / "tw"


def test_download_verified(served, tmp_path):
    root, url = served.root, served.url
    (root / "f.bin").write_bytes(b"payload" * 1000)
    dest = tmp_path / "cache" / "sub" / "f.bin"
    download_file(url + "f.bin", dest, sha(b"payload" * 1000))
    assert dest.read_bytes() == b"payload" * 1000
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.bin"]


def test_download_checksum_mismatch_keeps_existing(served, tmp_path):
    root, url = served.root, served.url
    (root / "f.bin").write_bytes(b"tampered")
    dest = tmp_path / "cache" / "f.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"good old file")
    with pytest.raises(DataError, match="checksum mismatch") as e:
        download_file(url + "f.bin", dest, sha(b"the real thing"))
    msg = str(e.value)
    assert url + "f.bin" in msg and sha(b"the real thing") in msg and sha(b"tampered") in msg
    assert str(dest.parent) in msg and "\n" not in msg
    assert dest.read_bytes() == b"good old file"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.bin"]  # no temp file left


def test_download_checksum_mismatch_no_partial_file(served, tmp_path):
    root, url = served.root, served.url
    (root / "f.bin").write_bytes(b"tampered")
    dest = tmp_path / "cache" / "f.bin"
    with pytest.raises(DataError, match="checksum mismatch"):
        download_file(url + "f.bin", dest, "0" * 64)
    assert list(dest.parent.iterdir()) == []


def test_download_http_error(served, tmp_path):
    url = served.url
    dest = tmp_path / "cache" / "missing.bin"
    with pytest.raises(DataError, match="could not download") as e:
        download_file(url + "missing.bin", dest, "0" * 64)
    assert str(dest.parent) in str(e.value) and "\n" not in str(e.value)
    assert list(dest.parent.iterdir()) == []


def test_download_connection_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match="could not download"):
        download_file(f"http://127.0.0.1:{port}/x", tmp_path / "x", "0" * 64, timeout=5)
    assert not (tmp_path / "x").exists()


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """Four candidate directories, one per lookup stage, all holding the file 'a'."""
    paths = {k: tmp_path / k for k in ("user", "env", "system", "cache")}
    for k in ("user", "system"):
        paths[k].mkdir()
        (paths[k] / "a").write_text("x")
    for k in ("env", "cache"):
        (paths[k] / "ds").mkdir(parents=True)
        (paths[k] / "ds" / "a").write_text("x")
    monkeypatch.setenv("TRAINWISE_DATA", str(paths["env"]))
    monkeypatch.setenv("TRAINWISE_CACHE", str(paths["cache"]))
    return paths


def test_locate_order(dirs, monkeypatch):
    system = [str(dirs["system"])]
    assert locate("ds", ["a"], str(dirs["user"]), system) == dirs["user"]
    assert locate("ds", ["a"], None, system) == dirs["env"] / "ds"
    monkeypatch.delenv("TRAINWISE_DATA")
    assert locate("ds", ["a"], None, system) == dirs["system"]
    assert locate("ds", ["a"], None, []) == dirs["cache"] / "ds"
    assert locate("ds", ["a", "b"], None, system) is None


def test_locate_skips_incomplete_dirs(dirs):
    (dirs["cache"] / "ds" / "b").write_text("x")
    assert locate("ds", ["a", "b"], None, [str(dirs["system"])]) == dirs["cache"] / "ds"


def test_locate_data_dir_missing(tmp_path):
    with pytest.raises(DataError, match="does not exist") as e:
        locate("ds", ["a"], str(tmp_path / "nope"), [])
    assert str(tmp_path / "nope") in str(e.value)


def test_locate_data_dir_lacks_files(dirs):
    with pytest.raises(DataError, match="lacks b, c") as e:
        locate("ds", ["a", "b", "c"], str(dirs["user"]), [str(dirs["system"])])
    assert str(dirs["user"]) in str(e.value)


def test_locate_returns_path(dirs):
    assert isinstance(locate("ds", ["a"], Path(dirs["user"]), []), Path)
