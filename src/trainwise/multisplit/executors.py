"""Where the K split workers of multi-split training run: one pool interface, three engines.

``pool.call(method, args_per_worker) -> results`` calls ``SplitWorker.method`` on every
worker at once and returns the results in worker order. Arguments and results are plain
data (parameters travel as bytes), so the engines give identical results for the same
seeds, given the same torch thread count per worker (the driver fixes it).

- ``InProcessPool``: the K workers are objects in this process, called one after another.
- ``ProcessPool``: one spawned process per worker, driven over a pipe.
- ``RayPool``: one Ray actor per worker (Zhang et al. run one training process per worker
  of a distributed engine); a local Ray starts if none is running, or ``address`` joins a
  cluster. Parameters are put in Ray's object store once per round and fetched by the
  receivers. With ``train.device`` cuda/auto on a cluster with GPUs, the K actors share them
  (each asks for GPUs / K, at most 1).
"""

from __future__ import annotations

import multiprocessing as mp
import traceback

from ..errors import TrainwiseError
from .worker import SplitWorker


class InProcessPool:
    name = "inprocess"

    def __init__(self, inits: list[tuple]):
        self.workers = [SplitWorker(*a) for a in inits]

    def share(self, blobs: list[bytes]) -> list:
        return blobs

    def call(self, method: str, args: list[tuple]) -> list:
        return [getattr(w, method)(*a) for w, a in zip(self.workers, args)]

    def call_one(self, i: int, method: str, args: tuple):
        return getattr(self.workers[i], method)(*args)

    def close(self) -> None:
        self.workers = []


def _serve(conn, init: tuple) -> None:
    """A worker process: build the SplitWorker, then answer (method, args) until told to stop."""
    try:
        w = SplitWorker(*init)
        conn.send(("ok", None))
    except BaseException as e:
        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
        return
    while True:
        msg = conn.recv()
        if msg is None:
            return
        method, args = msg
        try:
            conn.send(("ok", getattr(w, method)(*args)))
        except BaseException as e:
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


class ProcessPool:
    name = "processes"

    def __init__(self, inits: list[tuple]):
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for init in inits:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(child, init), daemon=True)
            p.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(p)
        self._gather()

    def _recv(self, i: int):
        try:
            status, value = self.conns[i].recv()
        except EOFError:
            self.procs[i].join(timeout=5)
            raise TrainwiseError(f"multisplit worker {i} died (exit code {self.procs[i].exitcode})") from None
        if status == "error":
            raise TrainwiseError(f"multisplit worker {i} failed: {value}")
        return value

    def _gather(self) -> list:
        return [self._recv(i) for i in range(len(self.conns))]

    def share(self, blobs: list[bytes]) -> list:
        return blobs

    def call(self, method: str, args: list[tuple]) -> list:
        for c, a in zip(self.conns, args):
            c.send((method, a))
        return self._gather()

    def call_one(self, i: int, method: str, args: tuple):
        self.conns[i].send((method, args))
        return self._recv(i)

    def close(self) -> None:
        for c in self.conns:
            try:
                c.send(None)
            except OSError:
                pass
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        self.conns, self.procs = [], []


class RayPool:
    name = "ray"

    def __init__(self, inits: list[tuple], address: str | None = None):
        from ..ray_cluster import _import_ray, connect, connect_timeout_default

        ray = self.ray = _import_ray()
        self.owned = False
        if not ray.is_initialized():
            import os

            import torch

            kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            if address:
                connect(ray, address, connect_timeout_default(), **kw)  # one line, not a long hang
            else:
                ray.init(num_cpus=os.cpu_count() or 1, num_gpus=torch.cuda.device_count(), **kw)
            self.owned = True
        from ..ray_cluster import trial_gpus

        threads = inits[0][-1]
        # actors hold their CPUs (and GPU shares) for their lifetime: never ask for more than the cluster has
        cpus = min(float(threads), ray.cluster_resources().get("CPU", 1.0) / len(inits))
        gpus = trial_gpus(inits[0][0], float(ray.cluster_resources().get("GPU", 0)), len(inits))
        actor = ray.remote(SplitWorker).options(num_cpus=cpus, max_restarts=0, **({"num_gpus": gpus} if gpus else {}))
        self.actors = [actor.remote(*a) for a in inits]
        try:
            ray.get([a.info.remote() for a in self.actors])  # surface construction errors now
        except ray.exceptions.RayError as e:
            self.close()
            raise TrainwiseError(f"a multisplit Ray actor failed to start: {e}") from None

    def share(self, blobs: list[bytes]) -> list:
        return [self.ray.put(b) for b in blobs]

    def call(self, method: str, args: list[tuple]) -> list:
        try:
            return self.ray.get([getattr(a, method).remote(*x) for a, x in zip(self.actors, args)])
        except self.ray.exceptions.RayError as e:
            raise TrainwiseError(f"a multisplit Ray actor failed in {method}: {e}") from None

    def call_one(self, i: int, method: str, args: tuple):
        try:
            return self.ray.get(getattr(self.actors[i], method).remote(*args))
        except self.ray.exceptions.RayError as e:
            raise TrainwiseError(f"a multisplit Ray actor failed in {method}: {e}") from None

    def close(self) -> None:
        for a in getattr(self, "actors", []):
            self.ray.kill(a)
        self.actors = []
        if self.owned:
            self.ray.shutdown()
            self.owned = False


POOLS = {"inprocess": InProcessPool, "processes": ProcessPool, "ray": RayPool}


def make_pool(name: str, inits: list[tuple], address: str | None = None):
    if name not in POOLS:
        raise TrainwiseError(f"unknown multisplit executor {name!r}; allowed: {', '.join(POOLS)}")
    return RayPool(inits, address) if name == "ray" else POOLS[name](inits)


__all__ = ["InProcessPool", "ProcessPool", "RayPool", "make_pool", "POOLS"]
