"""Synthetic linearly separable data of the optimisation-bias lab (Faghri et al., arXiv:2102.08868,
§5.1; their code: Gaussian inputs labelled by a random linear teacher).

x ~ N(0, I_d), a teacher w* ~ N(0, I_d), y = sign(w*·x). With n ≤ d points in general position
the training set is separable through the origin by many directions, so the max-margin
direction depends on the norm, which is what the lab measures. Default d = 100 and
n = d/{1, 2, 4, 8, 16, 32} as in the paper.
"""

from __future__ import annotations

import numpy as np

DIM = 100
D_OVER_N = (1, 2, 4, 8, 16, 32)


def make_data(dim: int, n_train: int, seed: int, n_test: int = 500) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal(dim)
    X = rng.standard_normal((n_train + n_test, dim))
    y = np.sign(X @ teacher)
    y[y == 0] = 1.0
    return dict(X=X[:n_train], y=y[:n_train], X_test=X[n_train:], y_test=y[n_train:], teacher=teacher)
