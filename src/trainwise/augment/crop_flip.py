"""Random crop with zero padding and random horizontal flip: the standard CIFAR-style
augmentation (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016),
vectorised over the batch with one gather (no per-sample Python).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from ..accel import to_device
from ..data.loader import Batch
from .base import TRANSFORMS, Transform
from ..registry import Settings


def crop_flip(x: torch.Tensor, pad: int, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Crop each image of ``x`` (N, C, H, W) from its zero-padded copy at offsets (dy, dx) in
    [0, 2*pad], and mirror the images where ``flip`` is true."""
    n, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad)) if pad > 0 else x
    rows = dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h)  # (N, H)
    cols = torch.arange(w, device=x.device).view(1, w)
    cols = torch.where(flip.view(n, 1), w - 1 - cols, cols) + dx.view(n, 1)  # (N, W)
    nidx = torch.arange(n, device=x.device).view(n, 1, 1)
    out = xp.permute(0, 2, 3, 1)[nidx, rows.view(n, h, 1), cols.view(n, 1, w)]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


@TRANSFORMS.register("crop-flip")
class CropFlip(Transform):
    class Settings(Settings):
        pad: int = Field(2, ge=0, le=64, description="zero padding on each side; below the image size")
        flip: bool = True

    def __call__(self, batch: Batch, gen: torch.Generator) -> Batch:
        x = batch.x
        n = x.shape[0]
        p = self.settings.pad
        dy = to_device(torch.randint(0, 2 * p + 1, (n,), generator=gen), x.device)
        dx = to_device(torch.randint(0, 2 * p + 1, (n,), generator=gen), x.device)
        if self.settings.flip:
            flip = to_device(torch.rand(n, generator=gen) < 0.5, x.device)
        else:
            flip = torch.zeros(n, dtype=torch.bool, device=x.device)
        return batch.replace(x=crop_flip(x, p, dy, dx, flip))
