import torch
import torch.nn.functional as F

from trainwise.losses import multilabel_bce, reduce_loss, smooth_one_hot, soft_cross_entropy


def test_soft_ce_equals_cross_entropy_on_one_hot():
    torch.manual_seed(0)
    z = torch.randn(16, 5)
    y = torch.randint(0, 5, (16,))
    assert torch.allclose(soft_cross_entropy(z, F.one_hot(y, 5).float()), F.cross_entropy(z, y, reduction="none"))


def test_soft_ce_is_linear_in_targets():
    z = torch.randn(4, 3)
    a, b = F.one_hot(torch.tensor([0, 1, 2, 0]), 3).float(), F.one_hot(torch.tensor([1, 2, 0, 2]), 3).float()
    mix = 0.3 * a + 0.7 * b
    assert torch.allclose(soft_cross_entropy(z, mix), 0.3 * soft_cross_entropy(z, a) + 0.7 * soft_cross_entropy(z, b))


def test_label_smoothing_rows_sum_to_one():
    t = smooth_one_hot(torch.tensor([0, 3]), 4, 0.1)
    assert torch.allclose(t.sum(1), torch.ones(2))
    assert abs(t[0, 0].item() - 0.925) < 1e-6


def test_weighted_reduction_and_bce():
    per = torch.tensor([1.0, 2.0, 3.0])
    assert reduce_loss(per, None) == 2.0
    assert reduce_loss(per, torch.tensor([3.0, 0.0, 0.0])) == 1.0
    z = torch.zeros(2, 3)
    assert torch.allclose(multilabel_bce(z, torch.zeros(2, 3)), torch.full((2,), torch.log(torch.tensor(2.0))))


def test_bce_batch_loss_is_the_reference_mean_over_batch_and_classes():
    """Cascading Sum's authors train with ``BCEWithLogitsLoss()``: its default reduction is the mean
    over batch x classes; trainwise's per-sample loss reduced by the loop must equal it."""
    g = torch.Generator().manual_seed(0)
    z, t = torch.randn(8, 10, generator=g), torch.rand(8, 10, generator=g)
    assert torch.allclose(reduce_loss(multilabel_bce(z, t), None), torch.nn.BCEWithLogitsLoss()(z, t))
