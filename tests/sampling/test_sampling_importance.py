import torch
import torch.nn.functional as F

from trainwise.budget import Budget
from trainwise.sampling import SAMPLERS, SamplerContext
from trainwise.sampling.importance import importance_draw, variance_reduction


def make(n=48, batch=4, seed=0, labels=None, **kw):
    labels = labels if labels is not None else torch.zeros(n, dtype=torch.long)
    ctx = SamplerContext(Budget(3, batch, n, 1.0), seed, labels, torch.device("cpu"))
    return SAMPLERS.build({"name": "importance", **kw}, ctx)


def linear_problem(n=48, d=5, c=3, seed=0):
    """A tiny softmax-linear model: per-sample losses, p(true), softmax and exact per-sample gradients."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, c, (n,), generator=g)
    w = torch.randn(c, d, generator=g, dtype=torch.float64) * 2
    p = (x @ w.T).softmax(1)
    loss = F.cross_entropy(x @ w.T, y, reduction="none")
    per_grad = (p - F.one_hot(y, c))[:, :, None] * x[:, None, :]  # d loss_i / d w, (n, c, d)
    return y, loss, p, per_grad


def test_importance_weighted_gradient_is_unbiased():
    y, loss, p, per_grad = linear_problem()
    full = per_grad.mean(0)  # the full-batch gradient

    def scorer(idx, probs=False):
        out = loss[idx], p[idx, y[idx]]
        return (*out, p[idx]) if probs else out

    for score in ("loss", "gradnorm-ub"):
        s = make(labels=y, tau_th=0.0, score=score)
        weighted, plain = [], []
        for i in range(1500):
            sel = s.next_batch(i, scorer)
            assert sel.weight is not None  # tau_th = 0: importance sampling on
            g = per_grad[sel.idx]
            # the loop's reduce_loss (mean of w_i * loss_i) has this gradient
            weighted.append((sel.weight.double()[:, None, None] * g).mean(0))
            plain.append(g.mean(0))
        for est, biased in ((torch.stack(weighted), False), (torch.stack(plain), True)):
            z = (est.mean(0) - full) / (est.std(0) / len(est) ** 0.5)
            if biased:  # the unweighted mean of the same draws is biased: the test has power
                assert z.abs().max() > 10, (score, z.abs().max())
            else:
                assert z.abs().max() < 4.5, (score, z)  # 15 coordinates


def test_draw_frequencies_match_the_scores():
    scores = torch.tensor([0.1, 0.5, 1.0, 2.0, 0.4, 3.0, 0.2, 0.8, 1.5, 0.5, 0.05, 1.0])
    counts = torch.zeros(12)
    s = make(n=12, batch=4, tau_th=0.0)  # presample P*B = 12 = every sample, each step
    for i in range(3000):
        sel = s.next_batch(i, lambda idx: (scores[idx], scores[idx]))
        counts += torch.bincount(sel.idx, minlength=12)
        p = scores[sel.idx] / scores.sum()
        assert torch.allclose(sel.weight, 1 / (12 * p))  # w = 1/(P*B*p_i)
    expected = scores / scores.sum() * counts.sum()
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 35  # 11 dof, p ~ 2.5e-4


def test_importance_draw_weights():
    pos, w = importance_draw(torch.tensor([1.0, 3.0]), 5, torch.Generator().manual_seed(0))
    assert torch.allclose(w, torch.where(pos == 0, 2.0, 2 / 3).float())


def test_tau_switch_uses_the_training_batch_while_off():
    assert abs(variance_reduction(torch.ones(12)) - 1.0) < 1e-9
    spiky = torch.tensor([100.0] + [0.01] * 11)
    assert variance_reduction(spiky) > 3  # tau = sqrt(n * sum g^2)
    s = make(n=12, batch=4)
    assert abs(s.tau_th - 2.0) < 1e-12  # (P*B + 3B)/(3B) with P = 3

    def no_forwards(idx, probs=False):
        raise AssertionError("no scoring forward while importance sampling is off")

    for i in range(30):  # flat training losses: tau stays at 1, uniform batches of B, no presample
        sel = s.next_batch(i, no_forwards)
        assert sel.weight is None and len(sel.idx) == 4
        s.feedback(sel.idx, torch.ones(4), None)
    assert abs(s.tau - (1 - 0.9 ** 30)) < 1e-9 and not s.on
    s.tau_th = 1.5  # a batch of 4 with one spike has tau = 2: the EMA crosses 1.5 within ~10 steps
    for i in range(30):  # spiky training losses raise tau through feedback alone
        if s.on:
            break
        sel = s.next_batch(i, no_forwards)
        s.feedback(sel.idx, torch.where(sel.idx == sel.idx[0], 100.0, 0.01), None)
    assert s.on and s.steps_on == 0
    scored = []
    sel = s.next_batch(i, lambda idx, probs=False: (scored.append(len(idx)) or torch.rand(len(idx)), None))
    assert scored == [12] and sel.weight is not None and s.steps_on == 1  # on: presample P*B, weighted
    tau = s.tau  # now following the presample's scores
    s.feedback(sel.idx, torch.ones(4), None)  # the weighted batch's own losses do not move tau
    assert s.tau == tau


def test_forwards_count_the_presample_only_when_on():
    from helpers import trial_dict
    from trainwise.study.config import TrialConfig
    from trainwise.train import train

    off = train(TrialConfig(**trial_dict(sampler={"name": "importance", "tau_th": 1e9})), progress=False)
    assert off["samples_forwarded"] == off["samples_backpropagated"]  # uniform SGD's cost exactly
    on = train(TrialConfig(**trial_dict(sampler={"name": "importance", "tau_th": 0.0})), progress=False)
    assert on["samples_forwarded"] == on["samples_backpropagated"] + 3 * on["samples_backpropagated"]
