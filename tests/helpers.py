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
    """sha256 and mtime of every file under ``root``: to check nothing was changed (the lock file,
    which every command takes, is not the study's data)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != ".trainwise.lock":
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


def painted(n: int, size: tuple[int, ...]):
    """A batch whose image i is the constant i + 1 everywhere, with target class i: after mixing,
    the pixels equal to v + 1 are exactly the area source v occupies."""
    import torch

    from trainwise.data.loader import gather

    x = (torch.arange(n, dtype=torch.float) + 1).view(n, 1, 1, 1).expand(n, *size).contiguous()
    return gather(x, torch.arange(n), torch.arange(n), n)


def area_by_source(x, n: int):
    """(batch, n) fraction of each output image's pixels that come from painted source v."""
    import torch

    return torch.stack([(x[:, 0] == v + 1).float().mean((1, 2)) for v in range(n)], 1)


def build_transform(spec, n: int, size: tuple[int, ...]):
    """A registered transform for n classes of images of ``size``, batch n, on the CPU."""
    import torch

    from trainwise.augment import TRANSFORMS, TransformContext
    from trainwise.budget import Budget

    return TRANSFORMS.build(spec, TransformContext(n, size, Budget(1, n, n), torch.device("cpu")))


def stored_rows(study_dir: Path) -> list[dict]:
    """Every row of a study's results database."""
    from trainwise.study.store import Store

    store = Store(study_dir / "results.db")
    try:
        return store.rows()
    finally:
        store.close()


def three_class_linear():
    """A fixed 3-class linear model on 4 inputs (Flatten + Linear) for attacks computed by hand."""
    import torch
    from torch import nn

    lin = nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[-1.0, -1.0, -1.0, 1.0], [-3.0, 1.0, -3.0, -1.0], [-1.0, -3.0, -1.0, 2.0]]))
        lin.bias.copy_(torch.tensor([0.0, 1.0, 0.0]))
    return nn.Sequential(nn.Flatten(), lin)


def cli_process(args: list[str], **popen_kw):
    """``python -m trainwise.cli ARGS`` as a real process (one torch thread; stdout dropped,
    stderr piped), for tests that need signals, kills or a second process."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "trainwise.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen_kw)


def wait_for(pred, timeout: float, what: str, proc=None):
    """Poll ``pred()`` until it is truthy (returned), failing the test after ``timeout`` seconds or
    when ``proc`` (a driver process) exits first."""
    import time

    import pytest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the driver exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def stored_status(out: Path) -> dict[str, str]:
    """trial id -> status of a study's database, read-only while a driver writes it (WAL)."""
    import sqlite3

    db = out / "results.db"
    if not db.exists():
        return {}
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        return dict(con.execute("SELECT trial_id, status FROM trials"))
    except sqlite3.OperationalError:  # not created yet
        return {}
    finally:
        con.close()


def load_error(dataset_cfg) -> str:
    """The one-line DataError ``load_raw`` raises for a bad dataset config."""
    import pytest

    from trainwise.data import load_raw
    from trainwise.errors import DataError

    with pytest.raises(DataError) as e:
        load_raw(dataset_cfg)
    assert "\n" not in str(e.value)
    return str(e.value)
