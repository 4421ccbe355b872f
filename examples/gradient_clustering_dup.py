"""Fashion-MNIST with duplicates, for examples/gradient_variance_dup.yaml: the regime in which
gradient clustering is reported to reduce the gradient variance (Faghri et al., arXiv:2007.04532).

The training set is the one examples/gradient_variance.yaml trains on (500 images per class, then a
stratified 10% held out for validation, both seeded by split seed 0: 4 500 images); then 10% of those
images (450, drawn with seed 0) each get 9 more copies, so each of them is there 10 times: 8 550
training images, 47% of them copies of 450. The test set is the full official one. Loaded through
``dataset: {name: python, function: examples/gradient_clustering_dup.py:fashion_duplicated}``.
"""

from __future__ import annotations

import torch

from trainwise.config import DatasetConfig
from trainwise.data import load_dataset

LIMIT, VAL, FRACTION, COPIES, SEED = 500, 0.1, 0.1, 10, 0


def duplicate(x: torch.Tensor, y: torch.Tensor, fraction: float, copies: int, seed: int):
    """``x``, ``y`` with ``fraction`` of the rows (drawn with ``seed``) repeated to ``copies`` each."""
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(y), generator=g)[: round(fraction * len(y))]
    extra = pick.repeat(copies - 1)
    return torch.cat([x, x[extra]]), torch.cat([y, y[extra]])


def fashion_duplicated():
    d = load_dataset(DatasetConfig(name="fashion-mnist", limit_per_class=LIMIT, val_fraction=VAL))
    x, y = duplicate(d.x_train, d.y_train, FRACTION, COPIES, SEED)
    return (x, y), (d.x_test, d.y_test)
