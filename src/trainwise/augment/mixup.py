"""mixup: convex combinations of pairs of inputs and of their targets (Zhang, Cisse, Dauphin
& Lopez-Paz, "mixup: Beyond Empirical Risk Minimization", ICLR 2018, arXiv:1710.09412).

lambda ~ Beta(alpha, alpha); x~ = lambda x_i + (1 - lambda) x_j and y~ = lambda y_i +
(1 - lambda) y_j, with j = perm(i) a random permutation of the batch. One lambda per batch
as in the paper's code (``per_sample: false``), or one per sample (vectorised). The batch
keeps the index, label and importance weight of its first source i.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..accel import to_device
from ..data.loader import Batch
from ..registry import Settings
from .base import TRANSFORMS, Transform
from .targets import beta, permutation, smooth


def mixup(x: torch.Tensor, y: torch.Tensor, lam: torch.Tensor | float, perm: torch.Tensor):
    """Mix each row of (x, y) with row ``perm[i]``; ``lam`` is a scalar or one value per row."""
    lam = torch.as_tensor(lam, dtype=x.dtype, device=x.device)
    lx = lam.view(-1, *([1] * (x.dim() - 1))) if lam.dim() else lam
    ly = lam.view(-1, 1) if lam.dim() else lam
    # lerp(a, b, t) = a + t (b - a): one fused pass for lam x + (1 - lam) x[perm]
    return torch.lerp(x.index_select(0, perm), x, lx), torch.lerp(y.index_select(0, perm), y, ly)


@TRANSFORMS.register("mixup")
class Mixup(Transform):
    class Settings(Settings):
        alpha: float = Field(1.0, gt=0, le=1000, description="Beta(alpha, alpha) for lambda")
        per_sample: bool = Field(False, description="one lambda per sample instead of per batch")
        smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing of the source targets")

    def __call__(self, batch: Batch, gen: torch.Generator) -> Batch:
        st = self.settings
        n = len(batch)
        lam = beta(st.alpha, st.alpha, n if st.per_sample else 1, gen)
        lam = lam if st.per_sample else lam[0]
        perm = permutation(n, gen, batch.x.device)
        x, y = mixup(batch.x, smooth(batch.y, st.smoothing), to_device(lam, batch.x.device), perm)
        return batch.replace(x=x, y=y)
