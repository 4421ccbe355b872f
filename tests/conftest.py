"""Shared fixtures: small, fast configs on the embedded and synthetic data."""

from __future__ import annotations

import os

import pytest
import torch

from helpers import serve_directory, trial_dict

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (and do not fight a busy machine for a second one)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def make_trial():
    return trial_dict


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A local HTTP server for download tests: ``served.root`` (tmp_path/www) at ``served.url``,
    ``served.requested`` the paths asked for. Proxies are unset so requests stay on 127.0.0.1."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "www"
    root.mkdir()
    with serve_directory(root) as s:
        yield s
