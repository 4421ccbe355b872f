"""Atomic writes: complete or absent, never partial; ordinary permissions."""

import os
import stat

import pytest

from trainwise import io


def test_atomic_write_replaces_whole_file_with_umask_permissions(tmp_path):
    p = tmp_path / "a.txt"
    io.atomic_write_text(p, "first")
    io.atomic_write_text(p, "second")
    assert p.read_text() == "second"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]  # no temp file left behind


def test_failed_write_keeps_the_previous_version(tmp_path, monkeypatch):
    p = tmp_path / "a.txt"
    io.atomic_write_text(p, "good")

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(OSError):
        io.atomic_write_text(p, "bad")
    assert p.read_text() == "good"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]
