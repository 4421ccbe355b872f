"""RICAP: four crops patched into one image; target weights equal the area of each source."""

from __future__ import annotations

import torch

from helpers import area_by_source as _area_by_source
from helpers import build_transform, painted
from trainwise.augment.ricap import random_layout, ricap
from trainwise.data.loader import gather


N, SIZE = 10, (3, 8, 11)


def _painted(n=N, size=SIZE):
    return painted(n, size)


def _build(spec, n=N, size=SIZE):
    return build_transform(spec, n, size)


def test_label_weights_equal_pixel_area_of_each_source():
    for per_sample in (False, True):
        t = _build({"name": "ricap", "beta": 0.3, "per_sample": per_sample})
        for seed in range(20):
            out = t(_painted(), torch.Generator().manual_seed(seed))
            assert torch.allclose(out.y, _area_by_source(out.x, 10), atol=1e-6)
            assert torch.allclose(out.y.sum(1), torch.ones(10))


def test_each_region_is_a_crop_of_its_source_at_its_offset():
    n, c, hh, ww = 5, 2, 7, 9
    # pixel value encodes (image, row, col), so every output pixel says where it came from
    code = (torch.arange(n).view(n, 1, 1) * 1000 + torch.arange(hh).view(1, hh, 1) * 10
            + torch.arange(ww).view(1, 1, ww)).float()
    x = code[:, None].expand(n, c, hh, ww).contiguous()
    g = torch.Generator().manual_seed(0)
    w, h, off = random_layout(n, hh, ww, 0.5, True, g)
    perms = torch.stack([torch.arange(n)] + [torch.randperm(n, generator=g) for _ in range(3)])
    out, y, weights = ricap(x, torch.eye(n), w, h, off, perms)
    for i in range(n):
        wi, hi = int(w[i]), int(h[i])
        for r in range(hh):
            for col in range(ww):
                k = 2 * (r >= hi) + (col >= wi)
                sr = r - (hi if r >= hi else 0) + int(off[i, k, 0])
                sc = col - (wi if col >= wi else 0) + int(off[i, k, 1])
                assert 0 <= sr < hh and 0 <= sc < ww
                assert out[i, 1, r, col] == int(perms[k, i]) * 1000 + sr * 10 + sc
        areas = torch.tensor([hi * wi, hi * (ww - wi), (hh - hi) * wi, (hh - hi) * (ww - wi)]) / (hh * ww)
        assert torch.allclose(weights[i], areas.float())


def test_first_region_keeps_the_sample_itself():
    out = _build({"name": "ricap"})(_painted(), torch.Generator().manual_seed(2))
    assert torch.equal(out.idx, torch.arange(10)) and torch.equal(out.labels, torch.arange(10))


def test_differentiable_wrt_inputs():
    n = 3
    x = torch.rand(n, 1, 4, 5, dtype=torch.double, requires_grad=True)
    g = torch.Generator().manual_seed(1)
    w, h, off = random_layout(n, 4, 5, 1.0, True, g)
    perms = torch.stack([torch.arange(n)] + [torch.randperm(n, generator=g) for _ in range(3)])
    y = torch.eye(n, dtype=torch.double)
    assert torch.autograd.gradcheck(lambda t: ricap(t, y, w, h, off, perms)[0], (x,))
    w1, h1, off1 = random_layout(n, 4, 5, 1.0, False, g)  # one layout for the batch (slice path)
    assert torch.autograd.gradcheck(lambda t: ricap(t, y, w1, h1, off1, perms)[0], (x,))


def test_seeded_determinism():
    t = _build({"name": "ricap", "smoothing": 0.1})
    a, b = (t(_painted(), torch.Generator().manual_seed(7)) for _ in range(2))
    c = t(_painted(), torch.Generator().manual_seed(8))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.x, c.x)
    assert torch.allclose(a.y.sum(1), torch.ones(10))


def test_batch_layout_fast_path_equals_the_per_pixel_gather():
    n, hh, ww = 6, 7, 9
    x = torch.rand(n, 3, hh, ww)
    g = torch.Generator().manual_seed(3)
    w, h, off = random_layout(n, hh, ww, 0.3, False, g)  # one layout: (1,), (1,), (1, 4, 2)
    perms = torch.stack([torch.arange(n)] + [torch.randperm(n, generator=g) for _ in range(3)])
    fast = ricap(x, torch.eye(n), w, h, off, perms)
    general = ricap(x, torch.eye(n), w.expand(n), h.expand(n), off.expand(n, 4, 2), perms)
    for a, b in zip(fast, general):
        assert torch.allclose(a, b)
