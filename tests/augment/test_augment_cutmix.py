"""CutMix: the target weights equal the pixel area each source image occupies, after clipping."""

from __future__ import annotations

import torch

from helpers import area_by_source as _area_by_source
from helpers import build_transform, painted
from trainwise.augment.cutmix import cutmix


N, SIZE = 12, (3, 9, 7)


def _painted(n=N, size=SIZE):
    return painted(n, size)


def _build(spec, n=N, size=SIZE):
    return build_transform(spec, n, size)


def test_label_weights_equal_pixel_area_per_batch_and_per_sample():
    for per_sample in (False, True):
        t = _build({"name": "cutmix", "alpha": 1.0, "per_sample": per_sample})
        for seed in range(20):
            out = t(_painted(), torch.Generator().manual_seed(seed))
            assert torch.allclose(out.y, _area_by_source(out.x, 12), atol=1e-6)
            assert torch.allclose(out.y.sum(1), torch.ones(12))


def test_lambda_is_corrected_for_boxes_clipped_at_the_border():
    b = _painted(4, (1, 10, 10))
    boxes = torch.tensor([[-3, 4, 8, 14]])  # asks for 7x6 but only rows 0..3, cols 8..9 are inside
    perm = torch.tensor([1, 2, 3, 0])
    x, y, lam = cutmix(b.x, b.y, boxes.clamp(0, 10), perm)
    assert torch.allclose(lam, torch.full((4,), 1 - 4 * 2 / 100))
    assert torch.allclose(y, _area_by_source(x, 4))


def test_smoothed_targets_sum_to_one():
    out = _build({"name": "cutmix", "smoothing": 0.2})(_painted(), torch.Generator().manual_seed(0))
    assert torch.allclose(out.y.sum(1), torch.ones(12)) and out.y.min() > 0


def test_differentiable_wrt_inputs():
    x = torch.rand(3, 2, 5, 5, dtype=torch.double, requires_grad=True)
    y = torch.eye(3, dtype=torch.double)
    boxes = torch.tensor([[1, 4, 0, 3], [0, 5, 2, 5], [2, 3, 2, 3]])
    perm = torch.tensor([2, 0, 1])
    assert torch.autograd.gradcheck(lambda t: cutmix(t, y, boxes, perm)[0], (x,))
    assert torch.autograd.gradcheck(lambda t: cutmix(t, y, boxes[:1], perm)[0], (x,))  # batch-box path


def test_seeded_determinism():
    t = _build({"name": "cutmix", "per_sample": True})
    a, b = (t(_painted(), torch.Generator().manual_seed(3)) for _ in range(2))
    c = t(_painted(), torch.Generator().manual_seed(4))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.x, c.x)


def test_batch_box_fast_path_equals_the_per_sample_mask():
    b = _painted(5, (2, 8, 8))
    perm = torch.tensor([3, 0, 4, 1, 2])
    box = torch.tensor([[1, 6, 2, 5]])
    fast = cutmix(b.x, b.y, box, perm)
    general = cutmix(b.x, b.y, box.expand(5, 4), perm)
    for u, v in zip(fast, general):
        assert torch.allclose(u, v)
