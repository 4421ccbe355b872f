"""A seeded generator of class-structured images, for fast tests.

Each class has a random smooth prototype image; a sample is its class prototype
plus Gaussian noise, clipped to [0, 1]. ``noise`` sets how hard the task is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import TensorData


def make_synthetic(
    n_train: int = 2000,
    n_test: int = 500,
    num_classes: int = 10,
    channels: int = 1,
    size: int = 16,
    noise: float = 0.3,
    seed: int = 0,
) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, channels, 4, 4, generator=g)
    protos = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % num_classes
        y = y[torch.randperm(n, generator=g)]
        x = protos[y] + noise * torch.randn(n, channels, size, size, generator=g)
        return x.clamp(0, 1), y

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test)
    return TensorData("synthetic", x_tr, y_tr, x_te, y_te, num_classes)
