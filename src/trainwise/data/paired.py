"""Paired datasets for retrieval: two views per item, ``TensorData`` with ``views`` set.

A paired dataset stores each pair as one row: view A's values then view B's, flattened, so the
data layer (storage, memory mapping, gathering by index, fingerprints) works on it unchanged;
``views`` holds the two views' shapes, and the model (``models/two_tower.py``) cuts each row
back into its views. ``y`` is the pair's **group**: pairs of one group are positives of each
other's queries (the 5 captions of one image); with one pair per group it is the pair's index.

- ``fashion-halves``: the left and right 28×14 halves of each Fashion-MNIST image, the two-view
  setup of split MNIST in deep CCA (Andrew et al., ICML 2013); 60k training pairs, 10k test pairs
  (10 folds of 1,000). Same-class halves that look alike are the hard negatives.
- ``synthetic-paired``: seeded two-view features from a shared latent (for tests), optionally
  several B views per group (``positives``).
"""

from __future__ import annotations

import math

import torch

from .base import TensorData

HALF_VIEWS = ((1, 28, 14), (1, 28, 14))


def halves(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) images -> (N, C·H·W) rows: the left half's values, then the right half's."""
    w = x.shape[-1] // 2
    return torch.cat([x[..., :w].reshape(len(x), -1), x[..., w:].reshape(len(x), -1)], dim=1).contiguous()


def load_fashion_halves(data_dir=None, download: bool = False) -> TensorData:
    from .fashion_mnist import load_fashion_mnist

    d = load_fashion_mnist(data_dir, download)
    return TensorData("fashion-halves", halves(d.x_train), torch.arange(d.n_train), halves(d.x_test),
                      torch.arange(len(d.x_test)), num_classes=0, views=HALF_VIEWS)


def make_synthetic_paired(n_train: int = 2000, n_test: int = 500, size: int = 16, noise: float = 0.3,
                          positives: int = 1, latent: int = 8, seed: int = 0) -> TensorData:
    """Pairs (a, b) of ``size``-dim features in (0, 1) from a shared ``latent``-dim code per group:
    a = σ(W_a z + noise·ε), b = σ(W_b z + noise·ε'); ``positives`` b views (pairs) per group."""
    g = torch.Generator().manual_seed(seed)
    w_a = torch.randn(latent, size, generator=g) / math.sqrt(latent)
    w_b = torch.randn(latent, size, generator=g) / math.sqrt(latent)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        groups = torch.arange(n) // positives
        z = torch.randn(int(groups[-1]) + 1, latent, generator=g)[groups]
        a = torch.sigmoid(3 * (z @ w_a) + noise * torch.randn(n, size, generator=g))
        b = torch.sigmoid(3 * (z @ w_b) + noise * torch.randn(n, size, generator=g))
        a = a[torch.arange(n) - torch.arange(n) % positives]  # one a per group, shared by its pairs
        return torch.cat([a, b], 1), groups

    x_tr, g_tr = draw(n_train)
    x_te, g_te = draw(n_test)
    return TensorData("synthetic-paired", x_tr, g_tr, x_te, g_te, num_classes=0, views=((size,), (size,)))
