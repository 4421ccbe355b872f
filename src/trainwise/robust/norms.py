"""The norms of the linear optimisation-bias lab and their duals (Faghri et al., "Bridging the Gap
Between Adversarial Robustness and Optimization Bias", arXiv:2102.08868, §2-3).

An attack of ℓp radius ε moves a linear score w·x by at most ε·‖w‖_{p*} (Hölder), so the
robustness of w against ℓp attacks is its margin measured with the dual norm p*:
``margin(w, X, y, attack) = min_i y_i w·x_i / ‖w‖_{p*}``. Attack norms: linf, l2, l1 and
dft-linf (the ℓ∞ norm of the unitary DFT, ‖Fδ‖∞, whose dual is the Fourier-ℓ1 norm ‖Fw‖₁).
"""

from __future__ import annotations

import numpy as np

ATTACK_NORMS = ("linf", "l2", "l1", "dft-linf")
DUAL = {"linf": "l1", "l2": "l2", "l1": "linf", "dft-linf": "dft-l1"}
LABEL = {"linf": "ℓ∞", "l2": "ℓ2", "l1": "ℓ1", "dft-linf": "Fourier-ℓ∞",
         "dft-l1": "Fourier-ℓ1"}


def dft(w: np.ndarray) -> np.ndarray:
    """Unitary DFT along the last axis (so ‖Fw‖₂ = ‖w‖₂)."""
    return np.fft.fft(w, axis=-1, norm="ortho")


def norm(w: np.ndarray, name: str) -> np.ndarray:
    """``name`` ∈ l1, l2, linf, dft-l1, dft-linf, along the last axis. Computed on w / max|w| and
    scaled back, so it stays finite for any finite w (trained weights can exceed 1e154)."""
    w = np.asarray(w, dtype=np.float64)
    s = np.abs(w).max(-1, keepdims=True) if w.size else np.ones(w.shape[:-1] + (1,))
    s = np.where(s > 0, s, 1.0)
    return s[..., 0] * _norm(w / s, name)


def _norm(w: np.ndarray, name: str) -> np.ndarray:
    if name == "l1":
        return np.abs(w).sum(-1)
    if name == "l2":
        return np.sqrt((w * w).sum(-1))
    if name == "linf":
        return np.abs(w).max(-1)
    if name == "dft-l1":
        return np.abs(dft(w)).sum(-1)
    if name == "dft-linf":
        return np.abs(dft(w)).max(-1)
    raise ValueError(f"unknown norm {name!r}")


def margin(w: np.ndarray, X: np.ndarray, y: np.ndarray, attack: str) -> float:
    """Robust margin of the linear classifier sign(w·x) against ``attack``-norm perturbations:
    the largest ε such that no training point is misclassified (negative if one already is)."""
    w = w / max(float(np.abs(w).max()), 1e-300)  # scale-free; keeps huge weights finite
    return float((y * (X @ w)).min() / max(norm(w, DUAL[attack]), 1e-300))
