"""Input normalisation inside the model, so everything outside it works in [0, 1] space.

Attacks, augmentations and data loaders all see raw inputs in [0, 1]; the wrapper
subtracts the training-set channel mean and divides by the std before the network.
"""

from __future__ import annotations

import torch
from torch import nn


class Normalized(nn.Module):
    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.net = net
        shape = (1, -1, 1, 1)
        self.register_buffer("mean", mean.reshape(shape).clone())
        self.register_buffer("std", std.reshape(shape).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # flat features
            return self.net((x - self.mean.flatten()) / self.std.flatten())
        return self.net((x - self.mean) / self.std)
