"""GPU shares under Ray: a trial on cuda asks for ``--gpus-per-trial`` GPUs, by default the cluster's
GPUs shared among the ``--workers`` trials that run at once (at most one each); multi-split actors
share the GPUs among the K splits; other executors refuse the option with one line.

This machine has no GPU, so Ray is replaced by a recorder of the resources each task or actor asks
for (a real cluster would schedule by exactly these numbers); the real local-Ray tests are in
test_ray_executor.py.
"""

from __future__ import annotations

import pytest
import yaml

import trainwise.study.ray_executor as rx
from trainwise.cli import main
from trainwise.errors import TrainwiseError
from trainwise.study.ray_executor import RayExecutor, check_gpus_per_trial, trial_gpus
from trainwise.study.runner import make_executor

CUDA = {"train": {"device": "cuda"}}
CPU = {"train": {"device": "cpu"}}


class FakeRay:
    """The part of Ray's API the executor and the multi-split pool call, recording resource requests."""

    class exceptions:
        class RayError(Exception):
            pass

        class TaskCancelledError(RayError):
            pass

    def __init__(self, gpus: float, cpus: float = 16):
        self.resources = {"CPU": cpus, "GPU": gpus} if gpus else {"CPU": cpus}
        self.options_seen: list[dict] = []

    def is_initialized(self):
        return True

    def cluster_resources(self):
        return dict(self.resources)

    def nodes(self):
        return [{"Alive": True, "Resources": self.cluster_resources()}]

    def remote(self, fn):
        fake = self

        class Remote:
            def options(self, **opts):
                fake.options_seen.append(opts)
                return self

            def remote(self, *args):
                if isinstance(fn, type):  # an actor class
                    return type("Actor", (), {"info": type("M", (), {"remote": staticmethod(lambda: None)})()})()
                return ("ref", args[0])

        return Remote()

    def wait(self, pending, num_returns=1, timeout=None):
        return pending[:1], pending[1:]

    def get(self, ref):
        return [None for _ in ref] if isinstance(ref, list) else (ref[1], "done", {"test_acc": 1.0}, None)

    def cancel(self, ref, force=False):
        pass

    def kill(self, actor):
        pass


def executor(monkeypatch, gpus: float, workers: int, gpus_per_trial=None) -> tuple[RayExecutor, FakeRay]:
    fake = FakeRay(gpus)
    monkeypatch.setattr(rx, "_import_ray", lambda: fake)
    return RayExecutor(workers, gpus_per_trial=gpus_per_trial), fake


def gpus_asked(monkeypatch, tmp_path, gpus, workers, gpus_per_trial=None, configs=(CUDA, CUDA, CPU)) -> list:
    ex, fake = executor(monkeypatch, gpus, workers, gpus_per_trial)
    jobs = [(f"t{i}", c, str(tmp_path / f"t{i}")) for i, c in enumerate(configs)]
    outcomes = list(ex.run(jobs))
    assert [o[1] for o in outcomes] == ["done"] * len(jobs)
    return [o.get("num_gpus", 0) for o in fake.options_seen]


def test_workers_share_one_gpu_by_default(monkeypatch, tmp_path):
    assert gpus_asked(monkeypatch, tmp_path, gpus=1, workers=4) == [0.25, 0.25, 0]
    assert gpus_asked(monkeypatch, tmp_path, gpus=1, workers=3) == [0.3333, 0.3333, 0]
    assert gpus_asked(monkeypatch, tmp_path, gpus=8, workers=2) == [1.0, 1.0, 0]  # never more than one each
    assert gpus_asked(monkeypatch, tmp_path, gpus=0, workers=4) == [0, 0, 0]  # no GPUs: CPU resources only


def test_gpus_per_trial_overrides_the_share(monkeypatch, tmp_path):
    assert gpus_asked(monkeypatch, tmp_path, gpus=2, workers=2, gpus_per_trial=0.125) == [0.125, 0.125, 0]
    assert gpus_asked(monkeypatch, tmp_path, gpus=4, workers=1, gpus_per_trial=2) == [2, 2, 0]
    auto = {"train": {"device": "auto"}}
    assert gpus_asked(monkeypatch, tmp_path, gpus=1, workers=1, gpus_per_trial=0.5, configs=(auto,)) == [0.5]


def test_more_gpus_per_trial_than_the_cluster_has_is_one_error(monkeypatch, tmp_path):
    with pytest.raises(TrainwiseError, match="cluster has 1 GPUs: no trial could be scheduled"):
        gpus_asked(monkeypatch, tmp_path, gpus=1, workers=1, gpus_per_trial=2)


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, float("nan"), float("inf"), 0.00001])
def test_gpu_shares_ray_cannot_take_are_refused(bad):
    with pytest.raises(TrainwiseError, match="--gpus-per-trial"):
        check_gpus_per_trial(bad)


def test_trial_gpus_rounds_down_to_rays_four_decimals():
    assert trial_gpus(CUDA, 1, 7) == 0.1428 and trial_gpus(CUDA, 1, 10**6) == 0.0001
    assert trial_gpus(CPU, 1, 4) == 0 and trial_gpus({}, 1, 4) == 0  # cpu is the default device


def test_multisplit_actors_share_the_gpus_among_the_k_splits(monkeypatch):
    from trainwise import ray_cluster
    from trainwise.multisplit.executors import RayPool

    fake = FakeRay(gpus=1)
    monkeypatch.setattr(ray_cluster, "_import_ray", lambda: fake)
    RayPool([(CUDA, "d", 0.1, 0, 1)] * 4)
    RayPool([(CPU, "d", 0.1, 0, 1)] * 4)
    assert [o.get("num_gpus", 0) for o in fake.options_seen] == [0.25, 0]


def test_gpus_per_trial_with_another_executor_is_one_line(tmp_path, capsys):
    with pytest.raises(TrainwiseError, match="--gpus-per-trial is for --executor ray"):
        make_executor("processes", 2, gpus_per_trial=0.5)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "g", "dataset": {"name": "synthetic"}, "model": {"name": "linear"}}))
    assert main(["study", str(path), "--out", str(tmp_path / "o"), "--workers", "2", "--gpus-per-trial", "0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("trainwise: error: --gpus-per-trial is for --executor ray")
    assert main(["study", str(path), "--executor", "ray", "--gpus-per-trial", "3.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a whole number of GPUs per trial" in err[0]
