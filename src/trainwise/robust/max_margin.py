"""Exact max-margin linear classifiers, the reference of the optimisation-bias lab (Faghri et al.,
arXiv:2102.08868, §3: "the maximally ℓp-robust linear classifier is the max-margin classifier in
the dual norm"; their code solves the programs with cvxpy, we use scipy).

``min_norm_separator(X, y, q)`` solves  min ‖w‖_q  s.t.  y_i w·x_i ≥ 1  and returns w; the
max margin against attacks in the dual norm of q is 1/‖w‖_q.

- q = l1 and q = linf: linear programs (scipy ``linprog``, HiGHS), with w = u − v or a bound t.
- q = l2: the least-distance program, solved exactly by non-negative least squares
  (Lawson & Hanson, "Solving Least Squares Problems", 1974, ch. 23: LDP via NNLS;
  ``scipy.optimize.nnls``).
- q = dft-l1 (Fourier-ℓ1, ‖Fw‖₁ with F the unitary DFT, real w): a second-order-cone program.
  scipy has no cone solver, so each |ŵ_k| is bounded by the outer polygon of ``facets``
  supporting lines, which gives an LP whose value V satisfies V ≤ OPT ≤ ‖Fw_V‖₁ ≤ V/cos(π/facets)
  (relative error < 7.6e-5 at the default 256 facets). ``fourier_gap`` reports that bound.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog, nnls

from ..errors import DataError
from .norms import norm

FACETS = 256


class NotSeparable(DataError):
    """No w separates the data through the origin."""


def _check(res, what: str):
    if res.status != 0:
        raise NotSeparable(f"{what}: the data are not linearly separable through the origin ({res.message})")
    return res


def _lp_l1(A: np.ndarray) -> np.ndarray:
    n, d = A.shape
    c = np.ones(2 * d)
    res = _check(linprog(c, A_ub=np.hstack([-A, A]), b_ub=-np.ones(n), bounds=(0, None), method="highs"), "l1")
    return res.x[:d] - res.x[d:]


def _lp_linf(A: np.ndarray) -> np.ndarray:
    n, d = A.shape
    c = np.zeros(d + 1)
    c[-1] = 1
    eye = np.eye(d)
    one = np.ones((d, 1))
    A_ub = np.vstack([np.hstack([-A, np.zeros((n, 1))]), np.hstack([eye, -one]), np.hstack([-eye, -one])])
    b_ub = np.concatenate([-np.ones(n), np.zeros(2 * d)])
    res = _check(linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * d + [(0, None)], method="highs"), "linf")
    return res.x[:d]


def _ldp_l2(A: np.ndarray) -> np.ndarray:
    """min ‖w‖₂ s.t. A w ≥ 1, by NNLS on E = [Aᵀ; 1ᵀ], f = e_{d+1} (Lawson & Hanson)."""
    n, d = A.shape
    E = np.vstack([A.T, np.ones((1, n))])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = nnls(E, f, maxiter=50 * (n + d))
    r = E @ u - f
    if abs(r[-1]) < 1e-12:
        raise NotSeparable("l2: the data are not linearly separable through the origin")
    return -r[:d] / r[-1]


def _lp_dft_l1(A: np.ndarray, facets: int = FACETS) -> np.ndarray:
    n, d = A.shape
    K = d // 2 + 1  # half spectrum of a real signal
    k = np.arange(K)[:, None]
    j = np.arange(d)[None, :]
    C = np.cos(2 * np.pi * k * j / d) / np.sqrt(d)  # Re(ŵ_k) = C_k·w
    S = -np.sin(2 * np.pi * k * j / d) / np.sqrt(d)  # Im(ŵ_k) = S_k·w
    mult = np.full(K, 2.0)
    mult[0] = 1.0
    if d % 2 == 0:
        mult[-1] = 1.0
    th = 2 * np.pi * np.arange(facets) / facets
    rows = (np.cos(th)[None, :, None] * C[:, None, :] + np.sin(th)[None, :, None] * S[:, None, :])  # K,J,d
    rows = rows.reshape(K * facets, d)
    T = -np.kron(np.eye(K), np.ones((facets, 1)))  # −t_k on the rows of coefficient k
    A_ub = np.vstack([np.hstack([rows, T]), np.hstack([-A, np.zeros((n, K))])])
    b_ub = np.concatenate([np.zeros(K * facets), -np.ones(n)])
    c = np.concatenate([np.zeros(d), mult])
    res = _check(linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * d + [(0, None)] * K,
                         method="highs"), "dft-l1")
    return res.x[:d]


def min_norm_separator(X: np.ndarray, y: np.ndarray, q: str) -> np.ndarray:
    """The w of smallest ‖w‖_q with y_i w·x_i ≥ 1 for all i (q ∈ l1, l2, linf, dft-l1)."""
    A = y[:, None] * np.asarray(X, dtype=np.float64)
    solver = {"l1": _lp_l1, "l2": _ldp_l2, "linf": _lp_linf, "dft-l1": _lp_dft_l1}.get(q)
    if solver is None:
        raise ValueError(f"unknown norm {q!r}; allowed: l1, l2, linf, dft-l1")
    return solver(A)


def max_margin(X: np.ndarray, y: np.ndarray, q: str) -> tuple[np.ndarray, float]:
    """(w*, γ*): the q-norm max-margin direction w*/‖w*‖_q and its margin 1/‖w*‖_q."""
    w = min_norm_separator(X, y, q)
    nw = float(norm(w, q))
    return w / nw, 1.0 / nw


def fourier_gap(facets: int = FACETS) -> float:
    """Upper bound on the relative error of the Fourier-ℓ1 optimum from the polygonal LP."""
    return 1.0 / np.cos(np.pi / facets) - 1.0
