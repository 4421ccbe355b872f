"""Shared helpers of the mixing augmentations: label smoothing of soft targets and the
mixing coefficients drawn from a Beta distribution with a ``torch.Generator``.

Label smoothing (Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016) is
applied by each mixing transform to the targets of its *sources* before they are mixed,
through its ``smoothing`` setting: ``gather`` produces one-hot targets and the loss uses
them as given, so this is where smoothing lives. Smoothing is linear, so smoothing the
sources and then mixing with weights summing to 1 equals mixing and then smoothing.
"""

from __future__ import annotations

import torch

from ..accel import to_device


def smooth(y: torch.Tensor, smoothing: float) -> torch.Tensor:
    """(1 - s) * y + s / C, row-wise on targets ``y`` (B, C); the row sums are kept."""
    if smoothing <= 0:
        return y
    return y * (1 - smoothing) + smoothing / y.shape[1] * y.sum(1, keepdim=True)


def beta(alpha: float, beta_: float, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` draws from Beta(alpha, beta) as a ratio of two Gamma draws taken from ``gen``
    (``torch.distributions`` cannot take a generator, and all randomness must come from it)."""
    a = torch._standard_gamma(torch.full((n,), float(alpha)), generator=gen)
    b = torch._standard_gamma(torch.full((n,), float(beta_)), generator=gen)
    return a / (a + b).clamp_min(1e-12)


def dirichlet(alpha: float, k: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """(n, k) rows drawn from a symmetric Dirichlet(alpha) (normalised Gamma draws)."""
    a = torch._standard_gamma(torch.full((n, k), float(alpha)), generator=gen)
    return a / a.sum(1, keepdim=True).clamp_min(1e-12)


def permutation(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """A random permutation of the batch, drawn on the host from ``gen``, on ``device`` (no host sync)."""
    return to_device(torch.randperm(n, generator=gen), device)
