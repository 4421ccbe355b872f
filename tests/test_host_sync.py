"""No per-step host sync beyond the loop's one loss value: samplers' feedback and scoring, gather and
the batch transforms keep their work on the device.

On this CPU-only machine ``host_sync.HostSyncTracer`` simulates the device (see its docstring for
what it sees and what it cannot); where CUDA exists, ``test_cuda_sync_debug_mode_counts_one_sync_per_step``
counts the real syncs with ``torch.cuda.set_sync_debug_mode`` as well.
"""

from __future__ import annotations

import warnings
from collections import Counter

import pytest
import torch

import trainwise.train
from host_sync import HostSyncTracer, on_device
from trainwise.data import load_dataset
from trainwise.data.base import as_float
from trainwise.study.config import TrialConfig
from trainwise.train import train

LOSS_READ = ("read", "item", "train:train")  # loss.item(): the one sync a step is allowed


def traced_run(monkeypatch, **over) -> tuple[dict, Counter, list]:
    """Train ``over`` on marked data with the tracer on; return the result, the per-step events
    (kind, op, module:function) and the per-epoch ones."""
    base = dict(dataset={"name": "synthetic", "synthetic": {"n_train": 256, "n_test": 64, "size": 8}},
                model={"name": "cnn", "width": 4}, optimizer={"lr": 0.05},
                train={"epochs": 3, "batch_size": 32, "eval_every": 10**9, "threads": 1}, seed=0)
    for k, v in over.items():
        base[k] = {**base[k], **v} if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    cfg = TrialConfig(**base)
    tracer = HostSyncTracer()
    real_build = trainwise.train.build_model

    def build(*a, **kw):  # the simulation leaves parameters and buffers unmarked: exempt them
        model = real_build(*a, **kw)
        tracer.exempt(model)
        return model

    monkeypatch.setattr(trainwise.train, "build_model", build)
    window = tracer.window()

    def on_step(step: int, total: int) -> None:  # the steps, without the final evaluation
        if step == 0:
            window.__enter__()
        elif step >= total:
            window.__exit__(None, None, None)

    with tracer:
        result = train(cfg, data=on_device(load_dataset(cfg.dataset)), progress=False, on_step=on_step)
    per_step = Counter((k, op, where.rsplit(":", 1)[0]) for (k, op, where), n in tracer.per_step().items()
                       for _ in range(n))
    return result, per_step, [e for e in tracer.events if e.per_epoch]


CLEAN = [
    dict(sampler="uniform"),
    dict(sampler="p-sgd"),
    dict(sampler={"name": "c-sgd", "warmup_epochs": 1}),
    dict(sampler="infobatch"),
    dict(augment=[{"name": "crop-flip", "pad": 1}]),
    dict(augment=[{"name": "mixup", "alpha": 1.0}]),
    dict(augment=[{"name": "mixup", "alpha": 1.0, "per_sample": True}]),
    dict(augment=[{"name": "cutmix"}]),
    dict(augment=[{"name": "cutmix", "per_sample": True}]),
    dict(augment=[{"name": "ricap"}]),
    dict(augment=[{"name": "ricap", "per_sample": True}]),
    dict(augment=[{"name": "crop-flip", "pad": 1}, {"name": "cascading-sum", "k": 2}], loss="bce"),
    dict(augment=[{"name": "cascading-sum", "k": 2, "grouping": "split", "weights": "dirichlet"}], loss="bce"),
    dict(sampler="infobatch", augment=[{"name": "crop-flip", "pad": 1}, {"name": "mixup"}],
         train={"precision": "bf16", "channels_last": True}),
]


@pytest.mark.parametrize("over", CLEAN, ids=lambda o: str(o.get("sampler", "")) + "+".join(
    a["name"] for a in o.get("augment", [])) + ("-bf16" if "train" in o else ""))
def test_a_step_reads_only_its_loss_from_the_device(monkeypatch, over):
    result, per_step, per_epoch = traced_run(monkeypatch, **over)
    assert per_step == Counter({LOSS_READ: result["steps"]}), per_step
    # what samplers read once per epoch (their plan from the feedback on the device) stays per epoch
    assert len(per_epoch) <= 8 * result["epochs"]


@pytest.mark.parametrize("sampler, where, per", [
    ({"name": "importance", "tau_th": 0.0}, "sampling.importance:scores", 1),
    ({"name": "importance", "tau_th": 0.0, "score": "gradnorm-ub"}, "sampling.importance:scores", 1),
    ({"name": "selective-backprop", "prime_samples": 0}, "sampling.selective_backprop:keep_probability", None),
])
def test_samplers_that_choose_on_the_host_read_their_scores_once_per_scoring_pass(monkeypatch, sampler, where, per):
    """Importance sampling and Selective Backprop decide on the host from the model's scores (the
    draw, τ, the keep test and the while loop are host control flow): one read of the scores per
    scoring forward, nothing else besides the loss."""
    result, per_step, _ = traced_run(monkeypatch, sampler=sampler)
    reads = {k: n for k, n in per_step.items() if k != LOSS_READ}
    assert per_step[LOSS_READ] == result["steps"]
    assert set(reads) == {("read", "cpu", where)}, per_step
    n = reads[("read", "cpu", where)]
    scoring_passes = (result["samples_forwarded"] - result["samples_backpropagated"]) // 32
    assert n == (result["steps"] * per if per else scoring_passes), (n, result)


def test_the_tracer_sees_what_would_sync(monkeypatch):
    """The simulation is not blind: the loop as it was (CPU feedback state, blocking copies of the
    generator's draws) is flagged."""
    from trainwise.augment import crop_flip
    from trainwise.sampling import p_sgd

    def old_feedback(self, idx, loss, p_true, probs=None):
        idx = idx.cpu()
        self.p_sum.index_add_(0, idx, p_true.detach().cpu().double())

    monkeypatch.setattr(p_sgd.PSGD, "feedback", old_feedback)
    monkeypatch.setattr(crop_flip, "to_device", lambda t, device: t.to(device))
    result, per_step, _ = traced_run(monkeypatch, sampler="p-sgd", augment=[{"name": "crop-flip", "pad": 1}])
    n = result["steps"]  # the old feedback is patched in from here: its innermost trainwise frame is the loop's
    assert per_step == Counter({LOSS_READ: n, ("read", "cpu", "train:train"): 2 * n,  # idx and p_true to the host
                                # the host indices into the state now on the device: an error on a GPU
                                ("mixed", "index_add_", "train:train"): n,
                                ("upload", "to(device)", "augment.crop_flip:__call__"): 3 * n}), per_step


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the CPU tests above simulate it)")
@pytest.mark.parametrize("over", CLEAN[:6], ids=str)
def test_cuda_sync_debug_mode_counts_one_sync_per_step(over):
    base = dict(dataset={"name": "synthetic", "synthetic": {"n_train": 256, "n_test": 64, "size": 8}},
                model={"name": "cnn", "width": 4}, optimizer={"lr": 0.05},
                train={"epochs": 3, "batch_size": 32, "eval_every": 10**9, "device": "cuda"}, seed=0)
    cfg = TrialConfig(**{**base, **{k: v for k, v in over.items() if k != "train"}})
    caught: list = []
    state = {"on": False, "steps": 0}

    def on_step(step: int, total: int) -> None:
        if step == 0:
            torch.cuda.set_sync_debug_mode("warn")
            state["on"] = True
        elif step >= total:
            torch.cuda.set_sync_debug_mode(0)
            state["steps"] = step

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            train(cfg, progress=False, on_step=on_step)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    # begin_epoch of score-based samplers reads its device state once per epoch
    assert state["steps"] <= len(syncs) <= state["steps"] + 8 * 3, [str(w.message)[:80] for w in syncs[:5]]


def _traced(fn, model):
    tracer = HostSyncTracer()
    tracer.exempt(model)
    with tracer, tracer.window():
        out = fn()
    return out, Counter((e.kind, e.op, e.where.rsplit(":", 1)[0]) for e in tracer.events)


@pytest.mark.parametrize("attack, norm", [("pgd", "linf"), ("pgd", "l2"), ("mim", "linf")])
def test_an_attack_runs_on_the_device_without_reading_it(attack, norm):
    """PGD's iterations (random start, gradient, step, projection, clipping) never read the device."""
    from trainwise.models import build_model
    from trainwise.robust.attacks import perturb

    data = on_device(load_dataset(TrialConfig(dataset={"name": "digits"}).dataset))
    model = build_model("cnn", data.input_shape, data.num_classes, *data.channel_stats(), width=4)
    x, y = as_float(data.x_train[:64]), data.y_train[:64]
    adv, events = _traced(lambda: perturb(model, x, y, 0.1, attack=attack, norm=norm, steps=5,
                                          gen=torch.Generator().manual_seed(0)), model)
    assert events == Counter() and adv.shape == x.shape


def test_evaluation_reads_two_numbers_whatever_its_chunks():
    from trainwise.evaluate import evaluate
    from trainwise.models import build_model

    data = on_device(load_dataset(TrialConfig(dataset={"name": "digits"}).dataset))
    model = build_model("cnn", data.input_shape, data.num_classes, *data.channel_stats(), width=4)
    (loss, acc), events = _traced(lambda: evaluate(model, data.x_test, data.y_test, batch_size=32), model)
    assert len(data.y_test) > 5 * 32 and events == Counter({("read", "item", "evaluate:evaluate"): 2})
