"""Worst-case attacks on a linear classifier sign(w·x) in the ℓ∞, ℓ2, ℓ1 and Fourier-ℓ∞ norms
(Faghri et al., arXiv:2102.08868, §2 and their Fourier-ℓ∞ attack).

For a linear score the optimal ε-perturbation is one steepest-descent step of length ε in the
attack norm against the label: δ = −y·ε·s(w) with s(w) = argmax_{‖s‖≤1} w·s, which lowers the
signed score y w·x by exactly ε·‖w‖_dual (Hölder's equality case):
  ℓ∞: s = sign(w);  ℓ2: s = w/‖w‖₂;  ℓ1: s = sign(w_j)e_j at j = argmax|w_j|;
  Fourier-ℓ∞: Fs = phase(Fw) (unit modulus, conjugate-symmetric, so s is real).
No clipping: the lab's inputs are unbounded Gaussian features.
"""

from __future__ import annotations

import numpy as np

from .norms import dft


def steepest_direction(w: np.ndarray, attack: str) -> np.ndarray:
    """The unit-``attack``-norm s maximising w·s."""
    if attack == "linf":
        return np.sign(w)
    if attack == "l2":
        return w / max(np.linalg.norm(w), 1e-300)
    if attack == "l1":
        s = np.zeros_like(w)
        j = int(np.argmax(np.abs(w)))
        s[j] = np.sign(w[j])
        return s
    if attack == "dft-linf":
        f = dft(w)
        mag = np.abs(f)
        phase = np.where(mag > 1e-300, f / np.maximum(mag, 1e-300), 1.0)
        return np.real(np.fft.ifft(phase, norm="ortho"))
    raise ValueError(f"unknown attack norm {attack!r}")


def attack_linear(w: np.ndarray, X: np.ndarray, y: np.ndarray, eps: float, attack: str) -> np.ndarray:
    """Adversarial inputs X + δ against sign(w·x), ‖δ_i‖ ≤ ε in the ``attack`` norm."""
    return X - eps * y[:, None] * steepest_direction(w, attack)[None, :]


def adversarial_error(w: np.ndarray, X: np.ndarray, y: np.ndarray, eps: float, attack: str,
                      rtol: float = 1e-6) -> float:
    """Fraction of points misclassified after the attack. A point pushed exactly onto the boundary
    (|score| within ``rtol``·ε‖w‖_dual, e.g. the support vectors of the max-margin classifier at
    ε = its margin) counts as correct."""
    Xa = attack_linear(w, X, y, eps, attack)
    s = y * (Xa @ w)
    shift = eps * float(np.abs(steepest_direction(w, attack) @ w))
    return float((s < -rtol * max(shift, 1e-300)).mean())
