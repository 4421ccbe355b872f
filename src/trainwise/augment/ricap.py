"""RICAP: random image cropping and patching (Takahashi, Matsubara & Uehara, "RICAP: Random
Image Cropping and Patching Data Augmentation for Deep CNNs", ACML 2018, arXiv:1811.09030;
used by Arazo et al., BMVC 2021, with beta = 0.3).

A boundary point (w, h) with w/W, h/H ~ Beta(beta, beta) splits the output image into four
regions (top-left, top-right, bottom-left, bottom-right) of sizes (h, w), (h, W - w),
(H - h, w), (H - h, W - w). Region k is filled with a crop of that size taken at a random
position from image perm_k(i); the target is sum_k W_k y_{perm_k(i)}, with W_k the area
fraction of region k. As in the authors' code the boundary and crop positions are drawn once
per batch (``per_sample: true`` draws them per sample). Choice: the top-left region comes from
the sample itself (perm_0 = identity), so the batch's index, label and importance weight stay
those of a source that is really in the image; the other three regions use random
permutations. One gather builds the batch: no per-sample Python.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..accel import to_device
from ..data.loader import Batch
from ..registry import Settings
from .base import TRANSFORMS, Transform
from .targets import beta, smooth


def ricap(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, h: torch.Tensor,
          offsets: torch.Tensor, perms: torch.Tensor):
    """Patch four crops into each image. ``w``, ``h``: boundary column/row, shape (N,) or (1,);
    ``offsets``: (N or 1, 4, 2) top-left (row, col) of each region's crop in its source image;
    ``perms``: (4, N) source of each region. Returns (x, y, weights (N, 4))."""
    n, c, hh, ww = x.shape
    dev = x.device
    perms = to_device(perms, dev)  # the layout is drawn on the host: one upload each, no host sync
    if w.numel() == 1 and h.numel() == 1 and offsets.shape[0] == 1:  # one layout for the batch
        return _ricap_batch(x, y, int(w), int(h), offsets[0], perms)
    w, h = to_device(w, dev).view(-1, 1, 1), to_device(h, dev).view(-1, 1, 1)
    off = to_device(offsets, dev)
    r = torch.arange(hh, device=dev).view(1, hh, 1)
    col = torch.arange(ww, device=dev).view(1, 1, ww)
    bottom, right = r >= h, col >= w
    k = (2 * bottom + right).long()  # (N or 1, H, W) region of each pixel
    src_r = r - torch.where(bottom, h, 0) + off[:, :, 0].gather(1, k.flatten(1)).view_as(k)
    src_c = col - torch.where(right, w, 0) + off[:, :, 1].gather(1, k.flatten(1)).view_as(k)
    k, src_r, src_c = (t.expand(n, hh, ww) for t in (k, src_r, src_c))
    src_n = perms.T.gather(1, k.flatten(1)).view(n, hh, ww)  # source image of each pixel
    pix = (src_n * (c * hh * ww) + src_r * ww + src_c).unsqueeze(1)  # (N, 1, H, W) flat index, channel 0
    pix = pix + torch.arange(c, device=dev).view(1, c, 1, 1) * (hh * ww)
    out = x.reshape(-1).index_select(0, pix.reshape(-1)).view(n, c, hh, ww)
    wf, hf = w.view(-1).to(x.dtype) / ww, h.view(-1).to(x.dtype) / hh
    weights = torch.stack([hf * wf, hf * (1 - wf), (1 - hf) * wf, (1 - hf) * (1 - wf)], 1).expand(n, 4)
    y_mix = sum(weights[:, j, None] * y.index_select(0, perms[j]) for j in range(4))
    return out, y_mix, weights


def _ricap_batch(x, y, w: int, h: int, offsets: torch.Tensor, perms: torch.Tensor):
    """``ricap`` with one layout for the whole batch: four slice copies, no per-pixel index."""
    n, c, hh, ww = x.shape
    regions = [(0, h, 0, w), (0, h, w, ww), (h, hh, 0, w), (h, hh, w, ww)]  # rows, cols of region k
    out = x.new_empty(x.shape)
    weights = []
    for k, (r0, r1, c0, c1) in enumerate(regions):
        oy, ox = int(offsets[k, 0]), int(offsets[k, 1])
        src = x[:, :, oy:oy + r1 - r0, ox:ox + c1 - c0]
        out[:, :, r0:r1, c0:c1] = src.index_select(0, perms[k])
        weights.append((r1 - r0) * (c1 - c0) / (hh * ww))
    wts = to_device(torch.tensor(weights, dtype=x.dtype), x.device).expand(n, 4)
    y_mix = sum(wts[:, j, None] * y.index_select(0, perms[j]) for j in range(4))
    return out, y_mix, wts


def random_layout(n: int, hh: int, ww: int, b: float, per_sample: bool, gen: torch.Generator):
    """Boundary (w, h) from Beta(b, b) scaled to the image and a random crop position in each
    region's source image; one layout per batch, or per sample."""
    m = n if per_sample else 1
    w = (beta(b, b, m, gen) * ww).round().long()
    h = (beta(b, b, m, gen) * hh).round().long()
    sizes_h = torch.stack([h, h, hh - h, hh - h], 1)  # (m, 4)
    sizes_w = torch.stack([w, ww - w, w, ww - w], 1)
    u = torch.rand(m, 4, 2, generator=gen)
    oy = (u[..., 0] * (hh - sizes_h + 1)).floor().long().clamp_max(hh - sizes_h)
    ox = (u[..., 1] * (ww - sizes_w + 1)).floor().long().clamp_max(ww - sizes_w)
    return w, h, torch.stack([oy, ox], -1)


@TRANSFORMS.register("ricap")
class Ricap(Transform):
    class Settings(Settings):
        beta: float = Field(0.3, gt=0, le=1000, description="Beta(beta, beta) for the boundary point")
        per_sample: bool = Field(False, description="one boundary and crop layout per sample")
        smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing of the source targets")

    def __call__(self, batch: Batch, gen: torch.Generator) -> Batch:
        st = self.settings
        n, _, hh, ww = batch.x.shape
        w, h, offsets = random_layout(n, hh, ww, st.beta, st.per_sample, gen)
        perms = torch.stack([torch.arange(n)] + [torch.randperm(n, generator=gen) for _ in range(3)])
        x, y, _ = ricap(batch.x, smooth(batch.y, st.smoothing), w, h, offsets, perms)
        return batch.replace(x=x, y=y)
