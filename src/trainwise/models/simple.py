"""Small reference models: a linear classifier, an MLP and the benchmark CNN."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field
from torch import nn


def linear(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Multinomial logistic regression on the flattened input."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))


def mlp(input_shape: tuple[int, ...], num_classes: int, hidden: Annotated[int, Field(ge=1, le=16384)] = 256,
        depth: Annotated[int, Field(ge=0, le=32)] = 2) -> nn.Module:
    """``depth`` hidden ReLU layers of width ``hidden``."""
    layers: list[nn.Module] = [nn.Flatten()]
    d = math.prod(input_shape)
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), nn.ReLU(inplace=True)]
        d = hidden
    layers.append(nn.Linear(d, num_classes))
    return nn.Sequential(*layers)


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def cnn(input_shape: tuple[int, ...], num_classes: int, width: Annotated[int, Field(ge=1, le=512)] = 32) -> nn.Module:
    """The benchmark model: three conv-BN-ReLU stages (width, 2w, 4w) with 2x2 max-pooling
    between them, global max-pooling and a linear head. Works for 8x8, 28x28 and 32x32 inputs;
    about 0.1M parameters at width 32."""
    c = input_shape[0]
    w = width
    return nn.Sequential(
        _conv_bn(c, w),
        nn.MaxPool2d(2),
        _conv_bn(w, 2 * w),
        nn.MaxPool2d(2),
        _conv_bn(2 * w, 4 * w),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * w, num_classes),
    )
