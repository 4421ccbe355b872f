"""Every sampler: the same seed gives the same choices, and a run killed with SIGKILL and
resumed from its checkpoint ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest
import torch

from helpers import trial_dict
from trainwise.budget import Budget
from trainwise.sampling import SAMPLERS, SamplerContext
from trainwise.study.config import TrialConfig
import trainwise.train
from trainwise.train import CHECKPOINT, train

SAMPLER_SPECS = {
    "uniform": "uniform",
    "p-sgd": "p-sgd",
    "c-sgd": {"name": "c-sgd", "warmup_epochs": 1},
    "selective-backprop": {"name": "selective-backprop", "history": 64},
    "importance": {"name": "importance", "tau_th": 1.0},  # switched on early, so weights are exercised
    "infobatch": {"name": "infobatch", "delta": 0.6},
    "multi-attempt": {"name": "multi-attempt", "attempts": 3},
    "max-loss-delta": {"name": "max-loss-delta", "attempts": 3},
    "gradient-clustering": {"name": "gradient-clustering", "clusters": 3, "snapshot_every": 2},
}


def choices(spec, seed, epochs=3):
    n = 60
    ctx = SamplerContext(Budget(epochs, 8, n, 0.5), seed, torch.arange(n) % 3, torch.device("cpu"))
    s = SAMPLERS.build(spec, ctx)
    fake = torch.linspace(0.05, 2.0, n)  # a fixed per-sample loss

    def scorer(idx, probs=False):
        p = torch.exp(-fake[idx])
        return (fake[idx], p, torch.full((len(idx), 3), 1 / 3)) if probs else (fake[idx], p)

    def lookahead(cands, probe=None, mode="eval"):  # a stand-in: one step "lowers" a batch's loss by its mean
        before = torch.stack([fake[c].double().mean() for c in cands])
        return before, before * 0.5

    probes = {"lookahead": lookahead} if getattr(s, "wants_lookahead", False) else {}
    if getattr(s, "wants_gradstats", False):  # per-example passes of a small model on fixed inputs
        from trainwise.gradstats import GradStats

        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 3))
        s.attach(GradStats.for_classification(net, torch.linspace(-1, 1, n * 4).reshape(n, 4).cos(),
                                              torch.arange(n) % 3, 3))
    out = []
    for e in range(epochs):
        for i in range(s.begin_epoch(e)):
            sel = s.next_batch(i, scorer, **probes)
            out.append((sel.idx.clone(), None if sel.weight is None else sel.weight.clone()))
            s.feedback(sel.idx, fake[sel.idx], torch.exp(-fake[sel.idx]))
    return out


def same(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(i, j) and (w is None) == (v is None) and (w is None or torch.equal(w, v))
        for (i, w), (j, v) in zip(a, b))


@pytest.mark.parametrize("name", SAMPLER_SPECS)
def test_same_seed_same_choices(name):
    spec = SAMPLER_SPECS[name]
    assert same(choices(spec, 3), choices(spec, 3))
    assert not same(choices(spec, 3), choices(spec, 4))


def run_config(name) -> dict:
    return trial_dict(sampler=SAMPLER_SPECS[name], seed=1,
                      train={"epochs": 12, "batch_size": 32, "checkpoint_every": 3, "eval_every": 50,
                             "threads": 1})


def _run_until_first_checkpoint(d: dict, out: str) -> None:
    """The child: train, and SIGKILL itself the moment its first checkpoint is on disk (step 3 of
    96, mid-epoch). Deterministic, unlike a parent racing a fast child to its end."""
    real_save = trainwise.train.atomic_torch_save

    def save_then_die(obj, path):
        real_save(obj, path)
        if Path(path).name == CHECKPOINT:
            os.kill(os.getpid(), signal.SIGKILL)

    trainwise.train.atomic_torch_save = save_then_die
    train(TrialConfig(**d), out, progress=False)


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory):
    """One run per sampler, each in its own process, killed by SIGKILL right after its first
    checkpoint. The processes are forked from this one (which has torch imported), not started
    with the CLI: a fresh interpreter spends seconds importing torch, six of them most of this
    file's time budget. The CLI path of a run killed from outside is tested in tests/test_train.py."""
    root = tmp_path_factory.mktemp("killed")
    torch.optim.SGD([torch.zeros(1, requires_grad=True)])  # pay torch's lazy optimizer imports once, here
    ctx = multiprocessing.get_context("fork")
    for name in SAMPLER_SPECS:
        p = ctx.Process(target=_run_until_first_checkpoint, args=(run_config(name), str(root / name)))
        p.start()
        p.join(120)
        assert p.exitcode == -signal.SIGKILL, (name, p.exitcode)
    return root


@pytest.mark.parametrize("name", SAMPLER_SPECS)
def test_resume_after_sigkill_gives_identical_weights(name, killed_runs, tmp_path):
    cfg = TrialConfig(**run_config(name))
    killed = killed_runs / name
    assert not (killed / "model.pt").exists(), "the kill must interrupt the run"
    ck = torch.load(killed / "checkpoint.pt", weights_only=True)  # written atomically before the kill
    assert 0 < ck["state"]["step"]
    ref = train(cfg, tmp_path / "ref", progress=False)
    resumed = train(cfg, killed, resume=True, progress=False)
    assert ck["state"]["step"] < ref["steps"]
    a = torch.load(tmp_path / "ref" / "model.pt", weights_only=True)
    b = torch.load(killed / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    for k in ("steps", "samples_forwarded", "samples_backpropagated", "test_acc"):
        assert ref[k] == resumed[k], k
