"""Test-time sum augmentation: logits averaged over M mixes x/2 + x_train/2."""

from __future__ import annotations

import torch

from trainwise.augment.tta_sum import evaluate_tta_sum, tta_sum_logits


def test_averages_the_logits_of_half_half_mixes_with_training_images():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x, x_train = torch.rand(5, 1, 3, 4), torch.rand(7, 1, 3, 4)
    m = 6
    z = tta_sum_logits(model, x, x_train, m, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)  # replay the same draws by hand
    picks = [torch.randint(0, 7, (5,), generator=g) for _ in range(m)]
    mean_partner = torch.stack([x_train[p] for p in picks]).mean(0)
    with torch.no_grad():  # the model is affine: the mean of logits is the logit of the mean input
        assert torch.allclose(z, model(0.5 * x + 0.5 * mean_partner), atol=1e-5)


def test_one_training_image_equal_to_the_input_gives_the_clean_prediction():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2))
    x = torch.rand(3, 1, 2, 2)
    for i in range(3):
        z = tta_sum_logits(model, x[i:i + 1], x[i:i + 1], 4, torch.Generator().manual_seed(0))
        with torch.no_grad():
            assert torch.allclose(z, model(x[i:i + 1]), atol=1e-6)


def test_evaluation_is_seeded_and_restores_train_mode():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.Dropout(0.5))
    x, y, xt = torch.rand(20, 1, 2, 2), torch.randint(0, 3, (20,)), torch.rand(9, 1, 2, 2)
    a = evaluate_tta_sum(model, x, y, xt, 3, torch.Generator().manual_seed(2), batch_size=7)
    b = evaluate_tta_sum(model, x, y, xt, 3, torch.Generator().manual_seed(2), batch_size=7)
    assert a == b and model.training and 0 <= a[1] <= 1
