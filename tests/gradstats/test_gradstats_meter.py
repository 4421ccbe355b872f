"""The gradient-variance meter: its estimates, and that a measurement leaves the sampler, the RNG, the
model's buffers and the loop's counters exactly as they were."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwise.budget import Budget
from trainwise.errors import ConfigError
from trainwise.gradstats.meter import GradientVarianceMeter, Moments, variance_of
from trainwise.gradstats.probe import classification_loss
from trainwise.sampling import SAMPLERS, SamplerContext


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def test_moments_match_the_textbook_estimates():
    g = torch.Generator().manual_seed(0)
    draws = torch.randn(40, 7, generator=g, dtype=torch.float64) * torch.arange(1, 8) + 3
    draws[:, 0] = 0  # a coordinate that never moves counts 0 in nvar
    var, nvar = variance_of(draws)
    assert var == pytest.approx(draws.var(0, unbiased=True).mean().item(), rel=1e-12)
    want = (draws.var(0)[1:] / (draws**2).mean(0)[1:]).sum() / 7
    assert nvar == pytest.approx(want.item(), rel=1e-12)
    with pytest.raises(ValueError):
        Moments().variance()


def setup(sampler="uniform", n=96, batch=8):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 16, 3))
    x, y = torch.rand(n, 1, 4, 4), torch.arange(n) % 3
    ctx = SamplerContext(Budget(3, batch, n), 0, y, torch.device("cpu"))
    s = SAMPLERS.build(sampler, ctx)
    meter = GradientVarianceMeter(4, 6, model, classification_loss(model, x, y, 3), n, batch, seed=0)
    return model, s, meter


def scorer(idx, probs=False):
    loss = torch.linspace(0.1, 1.0, len(idx))
    return (loss, torch.exp(-loss), torch.full((len(idx), 3), 1 / 3)) if probs else (loss, torch.exp(-loss))


@pytest.mark.parametrize("sampler", ["uniform", {"name": "importance", "tau_th": 0}, {"name": "selective-backprop",
                                                                                     "prime_samples": 0}])
def test_a_measurement_changes_nothing(sampler):
    model, s, meter = setup(sampler)
    state = dict(step=4, epoch=0, step_in_epoch=4, epoch_steps=s.begin_epoch(0), samples_forwarded=123,
                 samples_backpropagated=45)
    for i in range(4):
        s.next_batch(i, scorer)
    before = (torch.get_rng_state(), [b.clone() for b in model.buffers()], dict(state))
    rec = meter.measure(state, s, scorer, {})  # 6 draws: into the next epoch (12 steps per epoch)
    assert torch.equal(torch.get_rng_state(), before[0])
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), before[1]))
    assert state == before[2] and model.training
    assert rec["kind"] == "gradient_variance" and rec["step"] == 4 and rec["draws"] == 6
    assert all(rec[k] > 0 for k in ("var", "nvar", "var_uniform", "nvar_uniform", "var_uniform_2b"))
    # the sampler continues exactly as a twin that was never measured
    _, twin, _ = setup(sampler)
    twin.begin_epoch(0)
    for i in range(4):
        twin.next_batch(i, scorer)
    for i in range(4, 12):
        a, b = s.next_batch(i, scorer), twin.next_batch(i, scorer)
        assert torch.equal(a.idx, b.idx) and (a.weight is None) == (b.weight is None)


def test_uniform_at_2b_has_about_half_the_variance_of_b():
    model, s, meter = setup(n=600, batch=16)
    meter.draws = 300
    state = dict(step=1, epoch=0, step_in_epoch=0, epoch_steps=s.begin_epoch(0))
    rec = meter.measure(state, s, scorer, {})
    assert rec["var"] == pytest.approx(rec["var_uniform"], rel=0.2)  # the uniform sampler is uniform at B
    # without replacement from N: var_B ∝ (N − B)/B
    assert rec["var_uniform_2b"] / rec["var_uniform"] == pytest.approx((600 - 32) / 32 / ((600 - 16) / 16), rel=0.2)


def test_too_few_samples_for_2b_is_a_config_error():
    model = nn.Linear(3, 2)
    with pytest.raises(ConfigError, match="2 x batch_size"):
        GradientVarianceMeter(1, 4, model, classification_loss(model, torch.rand(10, 3), torch.zeros(10).long(), 2),
                              10, 8, seed=0)


def run(tmp_path, sampler, meter, unit="steps"):
    from helpers import trial_dict
    from trainwise.config import TrialConfig
    from trainwise.train import train

    tr = {"epochs": 4, "batch_size": 32, "threads": 1, "budget_unit": unit}
    if meter:
        tr["gradient_variance"] = meter
    d = trial_dict(sampler=sampler, model={"name": "mlp", "hidden": 16}, train=tr)
    out = tmp_path / ("meter" if meter else "plain")
    result = train(TrialConfig(**d), out, progress=False)
    return result, torch.load(out / "model.pt", weights_only=True), out


SAMPLERS_ALL = ["uniform", "p-sgd", {"name": "c-sgd", "warmup_epochs": 1}, {"name": "selective-backprop", "history": 64},
                {"name": "importance", "tau_th": 1.0}, {"name": "infobatch", "delta": 0.6},
                {"name": "multi-attempt", "attempts": 2}, {"name": "max-loss-delta", "attempts": 2},
                {"name": "gradient-clustering", "clusters": 3}]


@pytest.mark.parametrize("sampler", SAMPLERS_ALL, ids=lambda s: s if isinstance(s, str) else s["name"])
def test_the_meter_leaves_every_samplers_run_unchanged(tmp_path, sampler):
    import json

    plain, w0, _ = run(tmp_path, sampler, None, "forward_backward")
    metered, w1, out = run(tmp_path, sampler, {"every": 5, "draws": 3}, "forward_backward")
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    for k in ("steps", "samples_forwarded", "samples_backpropagated", "test_acc"):
        assert plain[k] == metered[k], k
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    gv = [r for r in recs if r.get("kind") == "gradient_variance"]
    assert [r["step"] for r in gv] == list(range(5, metered["steps"] + 1, 5)) and metered["gradient_variance"] == gv
    assert "gradient_variance" not in plain and "test_acc" in recs[-1]


def test_the_meter_stays_out_of_trial_ids_when_off():
    from trainwise.config import TrialConfig

    assert TrialConfig(train={"epochs": 3}).config_hash() == TrialConfig(
        train={"epochs": 3, "gradient_variance": None}).config_hash()
    assert TrialConfig(train={"gradient_variance": {"every": 5}}).config_hash() != TrialConfig().config_hash()


def test_the_meter_runs_on_a_retrieval_task_and_changes_nothing(tmp_path):
    from trainwise.config import TrialConfig
    from trainwise.train import train

    def cfg(meter):
        tr = {"epochs": 2, "batch_size": 40, "threads": 1, **({"gradient_variance": meter} if meter else {})}
        return TrialConfig(task="retrieval", dataset={"name": "synthetic-paired", "synthetic": {"n_train": 400,
                                                                                               "n_test": 200}},
                           model={"name": "two-tower", "embed_dim": 16, "hidden": 32}, loss="max-of-hinges",
                           optimizer={"name": "adam", "lr": 0.002, "weight_decay": 0}, train=tr)

    plain = train(cfg(None), tmp_path / "a", progress=False)
    metered = train(cfg({"every": 4, "draws": 3}), tmp_path / "b", progress=False)
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True) for d in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a) and plain["test_rsum"] == metered["test_rsum"]
    assert len(metered["gradient_variance"]) == 5 and all(g["var"] > 0 for g in metered["gradient_variance"])
