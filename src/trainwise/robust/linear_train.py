"""The trainers of the optimisation-bias lab: linear classifiers fitted to separable data with the
logistic loss by optimisers of different implicit bias (Faghri et al., "Bridging the Gap Between
Adversarial Robustness and Optimization Bias", arXiv:2102.08868, §3-5 and Table 1):

- ``gd``: gradient descent → ℓ2 max-margin (Soudry et al., JMLR 2018);
- ``cd``: coordinate descent on the coordinate of largest |gradient| → ℓ1 max-margin;
- ``signgd``: sign gradient descent, step ‖g‖₁·sign(g) → ℓ∞ max-margin (Gunasekar et al.,
  "Characterizing Implicit Bias in Terms of Optimization Geometry", ICML 2018: steepest descent
  w.r.t. a norm converges to that norm's max-margin);
- ``pen-l1`` / ``pen-l2`` / ``pen-linf``: proximal gradient (FISTA with backtracking, Beck &
  Teboulle 2009, as in the paper's code) on loss + λ‖w‖_q with a small λ → ℓq max-margin as
  λ → 0 (Rosset, Zhu & Hastie, NeurIPS 2003);
- ``conv2``: a two-layer linear convolutional net β = (u ⊛ v)/√d (full-width circular filters)
  trained by gradient descent on (u, v) → a stationary point of the Fourier-ℓ1 max-margin
  problem (Gunasekar et al., "Implicit Bias of Gradient Descent on Linear Convolutional
  Networks", NeurIPS 2018).

Step sizes (the paper bounds the line search by Gunasekar et al.'s η ≤ 1/(B²·L(w)), B the
largest dual norm of a sample): the steepest-descent trainers take η_t = c/(B²·L(w_t)), i.e.
a fixed step ``c/B²`` on the loss-normalised gradient ∇L/L, computed in the log domain so it
stays finite when the loss underflows. ``conv2`` uses the same rule with B the largest ℓ2 norm
and halves c whenever a step would raise the loss; its parameters grow geometrically once the
data are fit, so it stops (keeping its direction) once |β| may pass 1e100. Every trainer starts from w = 0 (``conv2``:
u random of norm ``init``, v = 0, as in the paper's code) and returns the linear predictor at
log-spaced iterations, for the margin-over-iterations plot.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

BLOWUP = 1e100  # conv2's parameters grow geometrically once the data are fit (n ≪ d)
TRAINERS = ("gd", "cd", "signgd", "pen-l1", "pen-l2", "pen-linf", "conv2")


def log_loss_terms(m: np.ndarray) -> tuple[float, np.ndarray]:
    """For margins m_i: (log L, q) with L = mean softplus(−m) and ∇_m L / L = −q (q ≥ 0)."""
    sp = np.logaddexp(0.0, -m)  # softplus(−m)
    with np.errstate(divide="ignore"):
        log_sp = np.where(m > 30, -m + np.log1p(-0.5 * np.exp(-np.maximum(m, 30))), np.log(sp))
    log_sum = np.logaddexp.reduce(log_sp)
    log_sig = -np.logaddexp(0.0, m)  # log σ(−m)
    return float(log_sum - np.log(len(m))), np.exp(log_sig - log_sum)


def normalized_grad(w: np.ndarray, A: np.ndarray) -> tuple[float, np.ndarray]:
    """(log L(w), ∇L(w)/L(w)) for A = y ⊙ X (rows y_i x_i)."""
    log_l, q = log_loss_terms(A @ w)
    return log_l, -(q @ A)


def log_points(iters: int, k: int = 40) -> list[int]:
    return sorted({int(round(v)) for v in np.geomspace(1, iters, k)})


# ------------------------------------------------------------------ steepest descent


def _dir_gd(g):
    return g


def _dir_cd(g):
    out = np.zeros_like(g)
    j = int(np.argmax(np.abs(g)))
    out[j] = g[j]
    return out


def _dir_signgd(g):
    return np.abs(g).sum() * np.sign(g)


STEEPEST: dict[str, tuple[Callable, float | str]] = {
    "gd": (_dir_gd, 2), "cd": (_dir_cd, np.inf), "signgd": (_dir_signgd, 1),
}


def steepest_descent(A: np.ndarray, method: str, iters: int, c: float = 1.0) -> dict[int, np.ndarray]:
    """GD / CD / sign-GD with step c/B² on ∇L/L; returns {iteration: w}."""
    direction, dual = STEEPEST[method]
    B = float(np.linalg.norm(A, ord=dual, axis=1).max())
    eta = c / B**2
    w = np.zeros(A.shape[1])
    rec, pts = {}, set(log_points(iters))
    for t in range(1, iters + 1):
        _, g = normalized_grad(w, A)
        w = w - eta * direction(g)
        if t in pts:
            rec[t] = w.copy()
    return rec


# ------------------------------------------------------------------ explicit penalty (FISTA)


def project_l1_ball(v: np.ndarray, r: float) -> np.ndarray:
    """Euclidean projection onto {‖x‖₁ ≤ r} (Duchi et al., ICML 2008)."""
    if np.abs(v).sum() <= r:
        return v.copy()
    u = np.sort(np.abs(v))[::-1]
    css = np.cumsum(u)
    k = np.arange(1, len(u) + 1)
    rho = np.nonzero(u * k > css - r)[0][-1]
    theta = (css[rho] - r) / (rho + 1)
    return np.sign(v) * np.maximum(np.abs(v) - theta, 0.0)


def prox(v: np.ndarray, t: float, q: str) -> np.ndarray:
    """prox of t·‖·‖_q."""
    if q == "l1":
        return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)
    if q == "l2":
        n = np.linalg.norm(v)
        return v * max(0.0, 1.0 - t / n) if n > 0 else v
    if q == "linf":
        return v - project_l1_ball(v, t)
    raise ValueError(q)


def _loss_grad(w, A):
    m = A @ w
    loss = float(np.logaddexp(0.0, -m).mean())
    sig = np.exp(-np.logaddexp(0.0, m))
    return loss, -(sig @ A) / len(m)


def penalized(A: np.ndarray, q: str, iters: int, lam: float = 1e-4) -> dict[int, np.ndarray]:
    """FISTA with backtracking on mean logistic loss + lam·‖w‖_q; returns {iteration: w}."""
    d = A.shape[1]
    x = np.zeros(d)
    yv, tk, step = x.copy(), 1.0, 1.0
    rec, pts = {}, set(log_points(iters))
    for it in range(1, iters + 1):
        fy, gy = _loss_grad(yv, A)
        step *= 2.0
        for _ in range(60):
            cand = prox(yv - step * gy, step * lam, q)
            diff = cand - yv
            if _loss_grad(cand, A)[0] <= fy + gy @ diff + 0.5 / step * (diff @ diff) + 1e-15:
                break
            step *= 0.5
        t_next = (1 + np.sqrt(1 + 4 * tk * tk)) / 2
        yv = cand + (tk - 1) / t_next * (cand - x)
        x, tk = cand, t_next
        if it in pts:
            rec[it] = x.copy()
    return rec


# ------------------------------------------------------------------ two-layer linear conv net


def circ_conv(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(u ⊛ v)/√d: circular convolution, scaled so ‖F(u⊛v)/√d‖ relates to F u ⊙ F v unitary-wise."""
    return np.real(np.fft.ifft(np.fft.fft(u) * np.fft.fft(v))) / np.sqrt(len(u))


def circ_corr(g: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Adjoint of u ↦ (u ⊛ v)/√d applied to g."""
    return np.real(np.fft.ifft(np.fft.fft(g) * np.conj(np.fft.fft(v)))) / np.sqrt(len(g))


def conv2(A: np.ndarray, iters: int, c: float = 1.0, init: float = 0.1, seed: int = 0) -> dict[int, np.ndarray]:
    """GD on (u, v) of β = (u ⊛ v)/√d with step c/B² on the loss-normalised gradient."""
    d = A.shape[1]
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u *= init / np.linalg.norm(u)
    v = np.zeros(d)
    B = float(np.linalg.norm(A, axis=1).max())
    rec, pts = {}, set(log_points(iters))
    log_l, g = normalized_grad(circ_conv(u, v), A)
    for t in range(1, iters + 1):
        while True:
            eta = c / B**2
            u2, v2 = u - eta * circ_corr(g, v), v - eta * circ_corr(g, u)
            log_l2, g2 = normalized_grad(circ_conv(u2, v2), A)
            if log_l2 <= log_l + 1e-12 or c < 1e-8:
                break
            c *= 0.5
        u, v, log_l, g = u2, v2, log_l2, g2
        if t in pts:
            rec[t] = circ_conv(u, v)
        if np.abs(u).max() * np.abs(v).max() * np.sqrt(d) > BLOWUP:  # bounds max|β|: stop, keep the direction
            last = circ_conv(u, v)
            rec.update({p: last for p in pts if p > t})
            break
    return rec


def train_linear(method: str, X: np.ndarray, y: np.ndarray, iters: int, lam: float = 1e-4,
                 seed: int = 0) -> dict[int, np.ndarray]:
    """Run one trainer of ``TRAINERS``; returns the linear predictor at log-spaced iterations."""
    A = y[:, None] * X
    if method in STEEPEST:
        return steepest_descent(A, method, iters)
    if method.startswith("pen-"):
        return penalized(A, method[4:], iters, lam)
    if method == "conv2":
        return conv2(A, iters, seed=seed)
    raise ValueError(f"unknown trainer {method!r}; allowed: {', '.join(TRAINERS)}")
