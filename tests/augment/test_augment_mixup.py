"""mixup: convex mixing of inputs and soft targets; lambda = 1 is the identity."""

from __future__ import annotations

import torch

from trainwise.augment import TRANSFORMS, TransformContext
from trainwise.augment.mixup import mixup
from trainwise.budget import Budget
from trainwise.data.loader import gather


def _batch(n=16, c=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 8, 8, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    return gather(x, y, torch.arange(n), c)


def _build(spec):
    ctx = TransformContext(10, (3, 8, 8), Budget(1, 16, 16), torch.device("cpu"))
    return TRANSFORMS.build(spec, ctx)


def test_lambda_one_is_identity():
    b = _batch()
    x, y = mixup(b.x, b.y, 1.0, torch.randperm(16))
    assert torch.equal(x, b.x) and torch.equal(y, b.y)


def test_mix_is_the_convex_combination_per_batch_and_per_sample():
    b = _batch()
    perm = torch.randperm(16)
    x, y = mixup(b.x, b.y, 0.3, perm)
    assert torch.allclose(x, 0.3 * b.x + 0.7 * b.x[perm]) and torch.allclose(y, 0.3 * b.y + 0.7 * b.y[perm])
    lam = torch.rand(16)
    x, y = mixup(b.x, b.y, lam, perm)
    for i in (0, 7, 15):
        assert torch.allclose(x[i], lam[i] * b.x[i] + (1 - lam[i]) * b.x[perm[i]])
        assert torch.allclose(y[i], lam[i] * b.y[i] + (1 - lam[i]) * b.y[perm[i]])


def test_soft_targets_sum_to_one_with_and_without_smoothing():
    for spec in ({"name": "mixup"}, {"name": "mixup", "per_sample": True, "smoothing": 0.1}):
        out = _build(spec)(_batch(), torch.Generator().manual_seed(1))
        assert torch.allclose(out.y.sum(1), torch.ones(16))
        assert (out.y >= 0).all()
    smoothed = _build({"name": "mixup", "smoothing": 0.1})(_batch(), torch.Generator().manual_seed(1))
    assert smoothed.y.min() >= 0.1 / 10 - 1e-6  # every class gets at least s / C


def test_differentiable_wrt_inputs():
    x = torch.rand(4, 1, 5, 5, dtype=torch.double, requires_grad=True)
    y = torch.eye(4, dtype=torch.double)
    perm = torch.tensor([1, 2, 3, 0])
    assert torch.autograd.gradcheck(lambda t: mixup(t, y, 0.7, perm)[0], (x,))


def test_seeded_determinism():
    t = _build({"name": "mixup", "alpha": 0.4, "per_sample": True})
    a = t(_batch(), torch.Generator().manual_seed(5))
    b = t(_batch(), torch.Generator().manual_seed(5))
    c = t(_batch(), torch.Generator().manual_seed(6))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)
