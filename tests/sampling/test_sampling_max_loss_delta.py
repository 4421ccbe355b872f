"""max-loss-delta (arXiv:2211.14395) and the loop's look-ahead it uses: a trial step on each
candidate batch, undone bit for bit; the batch whose step lowers the loss most is trained on."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import trial_dict
from trainwise.budget import Budget
from trainwise.lookahead import Lookahead
from trainwise.sampling import SAMPLERS, SamplerContext
from trainwise.sampling.max_loss_delta import MaxLossDelta, loss_delta
from trainwise.study.config import TrialConfig
from trainwise.train import train


def bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3),
                         nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def everything(model, opt) -> dict:
    """Every value a step could change: weights, buffers, optimizer state, lrs, grads, RNG."""
    out = {f"m.{k}": v.clone() for k, v in model.state_dict().items()}
    for i, p in enumerate(model.parameters()):
        out[f"g.{i}"] = None if p.grad is None else p.grad.clone()
        for k, v in opt.state.get(p, {}).items():
            out[f"s.{i}.{k}"] = v.clone() if isinstance(v, torch.Tensor) else v
    out["lr"] = [g["lr"] for g in opt.param_groups]
    out["rng"] = torch.get_rng_state()
    out["training"] = model.training
    return out


def same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, torch.Tensor):
            if not (isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.parametrize("optim", ["sgd", "adam"])
@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("probe", [False, True])
@pytest.mark.parametrize("warm", [False, True])
def test_lookahead_leaves_model_optimizer_bn_buffers_and_rng_bit_identical(optim, mode, probe, warm):
    model = bn_model()
    x, y = torch.rand(40, 1, 6, 6), torch.arange(40) % 3
    opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
           if optim == "sgd" else torch.optim.Adam(model.parameters(), lr=0.01))
    loss_of = lambda idx: F.cross_entropy(model(x[idx]), y[idx])  # noqa: E731
    if warm:  # momentum / moments and BN statistics exist; without: the first trial step creates them
        for i in range(3):
            opt.zero_grad()
            loss_of(torch.arange(8 * i, 8 * i + 8)).backward()
            opt.step()
    work = []
    look = Lookahead(model, opt, loss_of, lambda f, b: work.append((f, b)), lr=lambda: 0.05)
    ref = everything(model, opt)
    cands = [torch.arange(0, 8), torch.arange(8, 16), torch.arange(16, 24)]
    before, after = look(cands, torch.arange(24, 40) if probe else None, mode)
    assert same(ref, everything(model, opt))
    assert (before != after).all()  # the trial steps did change the loss
    if probe:
        assert torch.equal(before, before[:1].expand(3))  # measured once, from the same state
        assert work == [(16, 0)] + [(8 + 16, 8)] * 3
    else:
        assert work == [(16, 8)] * 3
    buffers = {k: v.data_ptr() for k, v in look.snapshot.buffers.items()}
    look(cands, None, mode)  # preallocated: a second call reuses the same buffers
    assert {k: v.data_ptr() for k, v in look.snapshot.buffers.items()} == buffers


def test_lookahead_delta_matches_the_analytic_delta_of_a_linear_model():
    """Softmax regression, one SGD step with weight decay, worked out in closed form."""
    torch.manual_seed(1)
    d, c, lr, wd = 5, 3, 0.3, 0.01
    model = nn.Linear(d, c).double()
    x, y = torch.randn(24, d, dtype=torch.float64), torch.arange(24) % c
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd)
    look = Lookahead(model, opt, lambda idx: F.cross_entropy(model(x[idx]), y[idx]))
    cands = [torch.arange(0, 8), torch.arange(8, 16), torch.arange(16, 24)]
    before, after = look(cands)
    w, b = model.weight.detach().clone(), model.bias.detach().clone()

    def ce(w, b, xb, yb):
        z = xb @ w.T + b
        return (torch.logsumexp(z, 1) - z[torch.arange(len(yb)), yb]).mean()

    for i, idx in enumerate(cands):
        xb, yb = x[idx], y[idx]
        r = (torch.softmax(xb @ w.T + b, 1) - F.one_hot(yb, c)) / len(yb)  # dL/dz
        w1 = w - lr * (r.T @ xb + wd * w)
        b1 = b - lr * (r.sum(0) + wd * b)
        assert float(before[i]) == pytest.approx(float(ce(w, b, xb, yb)), rel=1e-12)
        assert float(after[i]) == pytest.approx(float(ce(w1, b1, xb, yb)), rel=1e-12)
        delta = float(ce(w, b, xb, yb) - ce(w1, b1, xb, yb))
        assert float(loss_delta(before, after, "absolute")[i]) == pytest.approx(delta, rel=1e-9)
        assert float(loss_delta(before, after, "relative")[i]) == pytest.approx(delta / float(ce(w, b, xb, yb)),
                                                                               rel=1e-9)


def make(n=64, b=1.0, batch=8, seed=0, name="max-loss-delta", **settings):
    ctx = SamplerContext(Budget(3, batch, n, b), seed, torch.zeros(n, dtype=torch.long), torch.device("cpu"))
    return SAMPLERS.build({"name": name, **settings}, ctx)


class StubLookahead:
    """Before = 1, after = a fixed value per batch (its first index's); remembers the calls."""

    def __init__(self, n):
        self.after = torch.rand(n, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        self.calls = []

    def __call__(self, cands, probe=None, mode="eval"):
        self.calls.append([c.clone() for c in cands])
        return torch.ones(len(cands), dtype=torch.float64), self.after[torch.stack([c[0] for c in cands])]


@pytest.mark.parametrize("budget", [1.0, 0.6])
def test_fixed_batches_of_uniforms_epoch_largest_delta_first(budget):
    s, u = make(b=budget, attempts=3), make(b=budget, name="uniform")
    look = StubLookahead(64)
    for e in range(2):
        steps = s.begin_epoch(e)
        assert steps == u.begin_epoch(e)
        split = {tuple(u.next_batch(i, None).idx.tolist()) for i in range(steps)}
        got = []
        for i in range(steps):
            look.calls.clear()
            out = s.next_batch(i, None, lookahead=look).idx
            if i < steps - 1:
                (cands,) = look.calls
                assert len(cands) == min(3, steps - i)
                best = max(cands, key=lambda c: 1 - float(look.after[c[0]]))
                assert torch.equal(out, best)
            else:
                assert look.calls == []  # one batch left: taken as it lies
            got.append(tuple(out.tolist()))
        assert set(got) == split and len(got) == steps  # an order of uniform's own batches


def test_cost_per_step():
    s = make(attempts=4)
    assert s.cost_per_step("forward_backward") == 8 + 4 * 8 * 4 / 3
    p = make(attempts=4, probe="train", probe_size=30)
    assert p.cost_per_step("forward_backward") == 8 + 4 * (8 + 10) + 10


@SAMPLERS.register("test-checked-max-loss-delta")
class CheckedMaxLossDelta(MaxLossDelta):
    """max-loss-delta that checks, around every selection, that the loop's model, optimizer
    (momentum), BatchNorm buffers and RNG come out exactly as they went in."""

    checked = 0

    class Settings(MaxLossDelta.Settings):
        pass

    def next_batch(self, step_in_epoch, scorer, lookahead=None):
        ref = everything(lookahead.model, lookahead.opt)
        out = super().next_batch(step_in_epoch, scorer, lookahead=lookahead)
        assert same(ref, everything(lookahead.model, lookahead.opt))
        type(self).checked += 1
        return out


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_selection_in_the_loop_leaves_the_run_untouched_and_is_counted(mode):
    CheckedMaxLossDelta.checked = 0
    cfg = TrialConfig(**trial_dict(sampler={"name": "test-checked-max-loss-delta", "attempts": 3, "mode": mode},
                                   model={"name": "cnn", "width": 4},
                                   train={"epochs": 2, "batch_size": 32, "threads": 1}))
    r = train(cfg, progress=False)
    assert CheckedMaxLossDelta.checked == r["steps"] == 16
    # per epoch of 8 batches: 3,3,3,3,3,3,2 candidates tried, then the last batch as it lies
    trials = 2 * (6 * 3 + 2) * 32
    assert r["samples_backpropagated"] == 16 * 32 + trials
    assert r["samples_forwarded"] == 16 * 32 + 2 * trials


def test_forward_backward_budget_counts_the_trial_steps(tmp_path):
    d = trial_dict(sampler={"name": "max-loss-delta", "attempts": 2},
                   train={"epochs": 2, "batch_size": 32, "budget_unit": "forward_backward", "threads": 1})
    r = train(TrialConfig(**d), progress=False)
    work = r["samples_forwarded"] / 3 + 2 * r["samples_backpropagated"] / 3
    assert work >= 16 * 32 and r["steps"] < 16  # 16 uniform steps' work buys fewer steps
    assert work - 16 * 32 < 32 + 2 * 32 * 4 / 3  # stopped at the step that used the budget up


def test_a_trial_step_clips_the_gradient_as_the_real_step_does():
    from trainwise.accel import Accel
    from trainwise.config import TrainSettings

    torch.manual_seed(2)
    model = nn.Linear(6, 3).double()
    x, y = torch.randn(16, 6, dtype=torch.float64) * 50, torch.arange(16) % 3  # a gradient norm far above 0.1
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0)
    loss = lambda idx: F.cross_entropy(model(x[idx]), y[idx])  # noqa: E731
    idx = torch.arange(16)
    _, after = Lookahead(model, opt, loss, clip=0.1)([idx])
    _, unclipped = Lookahead(model, opt, loss)([idx])
    Accel(TrainSettings(), torch.device("cpu")).step(loss(idx), opt, 0.1)  # the loop's real, clipped step
    with torch.no_grad():
        assert float(after[0]) == pytest.approx(float(loss(idx)), rel=1e-12)
    assert float(unclipped[0]) != pytest.approx(float(after[0]), rel=1e-6)
