"""Rank-1 distances equal distances to brute-force per-example gradients (torch.func vmap/grad),
for an MLP and a conv net, in float64; and the linear path never allocates a B x d_in x d_out tensor."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.utils._python_dispatch import TorchDispatchMode

from trainwise.gradstats.capture import Capture, tracked_layers
from trainwise.gradstats.rank1 import (Factors, Plan, input_summary, layer_terms, output_summary, plan,
                                       squared_distances)

@pytest.fixture(autouse=True, scope="module")
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(20, 16), nn.ReLU(inplace=True), nn.Linear(16, 12),
                         nn.ReLU(inplace=True), nn.Linear(12, 5))


class ConvNet(nn.Module):
    """Padding, stride, dilation, a reflect-padded conv, eval-mode BatchNorm, pooling, a linear layer
    over positions (B x T x d) and a linear head."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 6, 3, stride=2, dilation=2, padding=2, padding_mode="reflect")
        self.tok = nn.Linear(6, 3)  # applied at each of the positions
        self.head = nn.Linear(3 * 16, 5)

    def forward(self, x):
        h = torch.relu_(self.bn(self.c1(x)))
        h = torch.relu(self.c2(h))  # B x 6 x 4 x 4
        h = self.tok(h.flatten(2).transpose(1, 2))  # B x 16 x 3
        return self.head(torch.relu(h).flatten(1))


def brute_force_distances(model, x, y, ci, co):
    """‖g_i − C_k‖² over the tracked weights, from per-example gradients by vmap(grad)."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss1(p, xi, yi):
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return nn.functional.cross_entropy(out, yi.unsqueeze(0))

    per_ex = vmap(grad(loss1), in_dims=(None, 0, 0))(params, x, y)
    names = {id(m): n for n, m in model.named_modules()}
    total = 0
    for n, m in enumerate(tracked_layers(model)):
        g = per_ex[names[id(m)] + ".weight"].reshape(len(x), m.weight.shape[0], -1)  # B x d_out x d_in
        c = co[n].unsqueeze(2) * ci[n].unsqueeze(1)  # C x d_out x d_in
        total = total + ((g.unsqueeze(1) - c.unsqueeze(0)) ** 2).sum((2, 3))
    return total, per_ex


def want_norm_of(per_ex, model):
    names = {id(m): n for n, m in model.named_modules()}
    return sum((per_ex[names[id(m)] + ".weight"] ** 2).flatten(1).sum(1) for m in tracked_layers(model))


def rank1_factors(model, x, y):
    with Capture(model) as cap:
        loss = nn.functional.cross_entropy(model(x), y, reduction="sum")
        return cap.factors(loss)


@pytest.mark.parametrize("make,shape", [(mlp, (20,)), (ConvNet, (2, 8, 8))])
def test_rank1_distances_equal_brute_force(make, shape):
    torch.manual_seed(0)
    model = make()
    for m in model.modules():  # non-trivial running statistics, used in eval mode
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    x, y = torch.randn(7, *shape), torch.randint(0, 5, (7,))
    layers = tracked_layers(model)
    fs = rank1_factors(model, x, y)
    # centres near the gradients of three of the examples, so that CC, CG and GG all matter
    ci = [input_summary(f)[:3] * (1 + 0.3 * torch.randn(3, 1)) + 0.1 * torch.randn(3, m.weight[0].numel())
          for f, m in zip(fs, layers)]
    co = [output_summary(f)[:3] * (1 + 0.3 * torch.randn(3, 1)) for f in fs]
    got, gnorm = squared_distances(fs, ci, co)
    want, per_ex = brute_force_distances(model, x, y, ci, co)
    assert ((got - want).abs() / want.abs()).max() <= 1e-6
    assert want.min() < 0.5 * want_norm_of(per_ex, model).max()  # not dominated by the centres' norms
    want_norm = want_norm_of(per_ex, model)
    assert ((gnorm - want_norm).abs() / want_norm).max() <= 1e-6


def test_every_positional_plan_gives_the_same_terms():
    torch.manual_seed(1)
    f = Factors(torch.randn(5, 6, 9), torch.randn(5, 4, 9))
    ci, co = torch.randn(3, 6), torch.randn(3, 4)
    results = [layer_terms(f, ci, co, Plan(a, b)) for a, b in itertools.product(["direct", "gradient"], repeat=2)]
    for cg, gg in results[1:]:
        assert torch.allclose(cg, results[0][0], rtol=1e-12) and torch.allclose(gg, results[0][1], rtol=1e-12)


def test_plan_prefers_the_per_example_gradient_for_many_positions_and_few_channels():
    assert plan(9, 32, 784, 10) == Plan("gradient", "gradient")  # the cnn's first conv on 28 x 28
    assert plan(576, 128, 49, 10).gg == "direct"  # its third: 7 x 7 positions, wide channels


class LargestTensor(TorchDispatchMode):
    """Records the largest tensor any operation produces while active."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.numel = max(self.numel, t.numel())
        return out


def test_linear_path_never_allocates_a_per_example_gradient():
    """Capturing the factors of an MLP (forward, backward) and its distances to C centres creates no
    tensor anywhere near B x d_in x d_out: the largest is a weight or a B x d activation."""
    b, d_in, d_out, c = 64, 96, 80, 10
    model = nn.Sequential(nn.Linear(d_in, d_out), nn.ReLU(inplace=True), nn.Linear(d_out, d_out))
    x, y = torch.randn(b, d_in), torch.randint(0, d_out, (b,))
    ci = [torch.randn(c, m.weight.shape[1]) for m in tracked_layers(model)]
    co = [torch.randn(c, m.weight.shape[0]) for m in tracked_layers(model)]
    with LargestTensor() as seen:
        squared_distances(rank1_factors(model, x, y), ci, co)
    assert seen.numel <= max(d_in, d_out) * d_out  # a weight (or its gradient-free transpose)
    assert seen.numel * 8 < b * d_in * d_out
