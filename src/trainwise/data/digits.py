"""scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes): the embedded default.

A fixed stratified 80/20 train/test split (seed 0) so every run sees the same test set.
Pixel values 0..16 are scaled to [0, 1]; images are (1, 8, 8).
"""

from __future__ import annotations

import numpy as np
import torch

from .base import TensorData


def load_digits() -> TensorData:
    from sklearn.datasets import load_digits as sk_load
    from sklearn.model_selection import train_test_split

    d = sk_load()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return TensorData(
        name="digits",
        x_train=torch.from_numpy(np.ascontiguousarray(x_tr)),
        y_train=torch.from_numpy(y_tr),
        x_test=torch.from_numpy(np.ascontiguousarray(x_te)),
        y_test=torch.from_numpy(y_te),
        num_classes=10,
        classes=[str(i) for i in range(10)],
    )
