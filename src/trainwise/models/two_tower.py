"""Two-tower embedding model for paired data: one encoder per view, L2-normalised embeddings.

The retrieval models of VSE++ (Faghri et al., BMVC 2018) embed an image and a caption in one
space with one encoder each; here each view gets an MLP or a small conv net. The input is a
paired dataset's row (``data/paired.py``: view A's values then view B's, flattened); the output is
(n, 2, E): row i's view-A and view-B embeddings, each of unit norm (so a·b is the cosine).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..errors import ConfigError


def _mlp(d_in: int, hidden: int, depth: int, embed_dim: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(depth):
        layers += [nn.Linear(d_in, hidden), nn.ReLU(inplace=True)]
        d_in = hidden
    return nn.Sequential(*layers, nn.Linear(d_in, embed_dim))


def _conv(shape: tuple[int, ...], width: int, embed_dim: int) -> nn.Module:
    def stage(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(*stage(shape[0], width), nn.MaxPool2d(2), *stage(width, 2 * width), nn.MaxPool2d(2),
                         *stage(2 * width, 4 * width), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                         nn.Linear(4 * width, embed_dim))


class TwoTower(nn.Module):
    def __init__(self, views: tuple[tuple[int, ...], ...], encoders: list[nn.Module]):
        super().__init__()
        self.views = [tuple(v) for v in views]
        self.sizes = [math.prod(v) for v in self.views]
        self.encoders = nn.ModuleList(encoders)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x.reshape(len(x), -1), self.sizes, dim=1)
        emb = [enc(p.reshape(len(x), *v)) for enc, p, v in zip(self.encoders, parts, self.views)]
        return F.normalize(torch.stack(emb, 1), dim=2)


def two_tower(input_shape: tuple, num_classes: int,
              encoder: Literal["mlp", "conv"] = "mlp",
              embed_dim: Annotated[int, Field(ge=1, le=8192)] = 128,
              hidden: Annotated[int, Field(ge=1, le=16384)] = 512,
              depth: Annotated[int, Field(ge=0, le=16)] = 1,
              width: Annotated[int, Field(ge=1, le=512)] = 16) -> nn.Module:
    """One encoder per view: ``mlp`` (``depth`` hidden ReLU layers of ``hidden``) or ``conv`` (three
    conv-BN-ReLU stages of ``width``, 2w, 4w with max-pooling, for image views), then a linear map to
    ``embed_dim``; embeddings are L2-normalised. ``input_shape`` is a paired dataset's two view shapes."""
    if not (isinstance(input_shape, tuple) and len(input_shape) == 2 and all(isinstance(v, tuple) for v in input_shape)):
        raise ConfigError("model 'two-tower' needs a paired dataset (two views per item, e.g. fashion-halves) "
                          "and task: retrieval")
    encoders = []
    for shape in input_shape:
        if encoder == "conv":
            if len(shape) != 3:
                raise ConfigError(f"two-tower encoder 'conv' needs image views (C, H, W), got a view of shape "
                                  f"{shape}; use encoder: mlp")
            encoders.append(_conv(shape, width, embed_dim))
        else:
            encoders.append(_mlp(math.prod(shape), hidden, depth, embed_dim))
    return TwoTower(input_shape, encoders)
