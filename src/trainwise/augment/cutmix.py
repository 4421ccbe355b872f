"""CutMix: paste a random box of another image (Yun, Han, Oh, Chun, Choe & Yoo, "CutMix:
Regularization Strategy to Train Strong Classifiers with Localizable Features", ICCV 2019,
arXiv:1905.04899).

lambda ~ Beta(alpha, alpha); a box of side ratio sqrt(1 - lambda) centred uniformly in the
image is cut from image j = perm(i) and pasted into image i; the box is clipped to the
image, and lambda is corrected to the pixel area that really remains of image i, so the
target lambda y_i + (1 - lambda) y_j weights each source by the area it occupies.
One box per batch as in the paper's code, or one per sample (``per_sample: true``);
both vectorised with a mask, no per-sample Python.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..accel import to_device
from ..data.loader import Batch
from ..registry import Settings
from .base import TRANSFORMS, Transform
from .targets import beta, permutation, smooth


def cutmix(x: torch.Tensor, y: torch.Tensor, boxes: torch.Tensor, perm: torch.Tensor):
    """Paste ``x[perm]`` into ``x`` inside ``boxes`` (rows y0, y1, x0, x1, half-open, per sample
    (N, 4) or one (4,) for the batch); mix targets by the real pasted area. Returns (x, y, lam)."""
    n, _, h, w = x.shape
    if boxes.numel() == 4:  # one box for the batch: copy only the box region of the permuted batch
        y0, y1, x0, x1 = boxes.reshape(4).tolist()  # drawn on the host: no device read
        out = x.clone()
        out[:, :, y0:y1, x0:x1] = x[:, :, y0:y1, x0:x1].index_select(0, perm)
        lam = torch.full((n,), 1 - (y1 - y0) * (x1 - x0) / (h * w), dtype=x.dtype, device=x.device)
        return out, lam[:, None] * y + (1 - lam[:, None]) * y.index_select(0, perm), lam
    b = to_device(boxes, x.device).view(-1, 4)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((rows >= b[:, 0, None, None]) & (rows < b[:, 1, None, None])
              & (cols >= b[:, 2, None, None]) & (cols < b[:, 3, None, None]))  # (N or 1, H, W)
    out = torch.where(inside.unsqueeze(1), x.index_select(0, perm), x)
    lam = 1 - inside.flatten(1).to(x.dtype).mean(1)  # fraction of image i that is kept
    lam = lam.expand(n) if lam.numel() == 1 else lam
    return out, lam[:, None] * y + (1 - lam[:, None]) * y.index_select(0, perm), lam


def random_boxes(lam: torch.Tensor, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Boxes of side ratio sqrt(1 - lam) centred uniformly at random, clipped to the image."""
    r = (1 - lam).clamp(0, 1).sqrt()
    ch, cw = (h * r).floor().long(), (w * r).floor().long()
    cy = torch.randint(0, h, lam.shape, generator=gen)
    cx = torch.randint(0, w, lam.shape, generator=gen)
    return torch.stack([(cy - ch // 2).clamp(0, h), (cy + ch - ch // 2).clamp(0, h),
                        (cx - cw // 2).clamp(0, w), (cx + cw - cw // 2).clamp(0, w)], dim=-1)


@TRANSFORMS.register("cutmix")
class CutMix(Transform):
    class Settings(Settings):
        alpha: float = Field(1.0, gt=0, le=1000, description="Beta(alpha, alpha) for the kept area")
        per_sample: bool = Field(False, description="one box per sample instead of per batch")
        smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing of the source targets")

    def __call__(self, batch: Batch, gen: torch.Generator) -> Batch:
        st = self.settings
        n, _, h, w = batch.x.shape
        lam = beta(st.alpha, st.alpha, n if st.per_sample else 1, gen)
        boxes = random_boxes(lam, h, w, gen)
        perm = permutation(n, gen, batch.x.device)
        x, y, _ = cutmix(batch.x, smooth(batch.y, st.smoothing), boxes, perm)
        return batch.replace(x=x, y=y)
