"""Pre-activation ResNet-18 for 32x32 inputs (He et al., "Identity Mappings in Deep Residual
Networks", ECCV 2016), the model of the budgeted-training paper (Arazo et al., BMVC 2021).

``width`` scales the channel counts (64 is the standard network).
"""

from __future__ import annotations

from typing import Annotated

import torch.nn.functional as F
from pydantic import Field
from torch import nn


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreActResNet18(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int = 64):
        super().__init__()
        w = width
        self.stem = nn.Conv2d(in_channels, w, 3, 1, 1, bias=False)
        stages, cin = [], w
        for i, stride in enumerate((1, 2, 2, 2)):
            cout = w * 2**i
            stages += [PreActBlock(cin, cout, stride), PreActBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(cin)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = self.blocks(self.stem(x))
        out = F.adaptive_avg_pool2d(F.relu(self.bn(out)), 1).flatten(1)
        return self.head(out)


def preact_resnet18(input_shape: tuple[int, ...], num_classes: int,
                    width: Annotated[int, Field(ge=1, le=256)] = 64) -> nn.Module:
    return PreActResNet18(input_shape[0], num_classes, width)
