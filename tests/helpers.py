"""Helpers shared by tests (importable as ``helpers``: pytest puts tests/ on the path)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


def trial_dict(**over) -> dict:
    """A tiny trial: synthetic 8x8 images, the linear model, one epoch."""
    d = dict(
        dataset={"name": "synthetic", "synthetic": {"n_train": 256, "n_test": 128, "size": 8}},
        model={"name": "linear"},
        optimizer={"name": "sgd", "lr": 0.1},
        train={"epochs": 2, "batch_size": 32},
        seed=0,
    )
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k] = {**d[k], **v}
        else:
            d[k] = v
    return d


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file under ``root``: to check nothing was changed."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


@dataclass
class Served:
    root: Path
    url: str
    requested: list[str] = field(default_factory=list)  # request paths, in order


@contextmanager
def serve_directory(root: Path) -> Iterator[Served]:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port) serving ``root``; stopped on exit."""
    served = Served(Path(root), "")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            served.requested.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
