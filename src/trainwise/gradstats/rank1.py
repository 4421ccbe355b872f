"""Squared distances between per-example gradients and rank-1 centres, never building the gradients.

Faghri, Duvenaud, Fleet & Ba, "A Study of Gradient Variance in Deep Learning", arXiv:2007.04532, §3
(public code fartashf/gvar_code, ``gluster/layer.py``). For a linear layer the weight gradient of
example i is the outer product G_i A_iᵀ of the gradient of the loss w.r.t. the layer's output (G_i,
d_out) and its input activation (A_i, d_in). A centre is rank-1 too, Co_k Ci_kᵀ, so

    ‖G_i A_iᵀ − Co_k Ci_kᵀ‖² = ‖A_i‖²‖G_i‖² − 2 (Ci_k·A_i)(Co_k·G_i) + ‖Ci_k‖²‖Co_k‖²
                             =        GG_i   −         2 CG_ik         +      CC_k

costs two (B × d) (d × C) products per layer: no B × d_in × d_out tensor ever exists.

A layer applied at T positions (a convolution through ``unfold``, or a linear layer on B × … × d
inputs) has the gradient Σ_t G_it A_itᵀ, so with A_i: d_in × T and G_i: d_out × T

    CG_ik = Σ_t (Ci_k·A_it)(Co_k·G_it)              (direct, B·C·T·(d_in + d_out))
          = Ci_kᵀ (A_i G_iᵀ) Co_k                   (through the per-example gradient, B·T·d_in·d_out)
    GG_i  = Σ_st (A_is·A_it)(G_is·G_it)             (direct, B·T²·(d_in + d_out))
          = ‖A_i G_iᵀ‖²                             (through the per-example gradient)

and ``plan`` picks, per layer, the cheaper combination by operation count, as the reference's
``_conv_dot_choose`` / ``_gnorm_choose`` do (the per-example gradient, when it is built, serves both
terms). Every function works in the dtype it is given (float64 in the tests).

The centre update uses per-example summaries: Ci_k is the cluster's mean of A_i (over positions
too: ``input_summary``), Co_k the cluster's mean of G_i summed over positions (``output_summary``),
as the reference does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CHUNK_ELEMENTS = 1 << 22  # per-layer intermediates are computed in chunks of examples of at most this size


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 when it is in a half precision (autocast outputs); float32/64 unchanged."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


@dataclass(frozen=True)
class Factors:
    """One layer's per-example factors for a batch: ``a`` B × d_in (× T), ``g`` B × d_out (× T)."""

    a: torch.Tensor
    g: torch.Tensor

    @property
    def positions(self) -> int:
        return 1 if self.a.dim() == 2 else int(self.a.shape[2])


@dataclass(frozen=True)
class Plan:
    """How the positional (3-D) terms are computed: ``"direct"`` or ``"gradient"`` (through the
    per-example gradient A_i G_iᵀ) for CG and for GG."""

    cg: str
    gg: str


def plan(d_in: int, d_out: int, t: int, c: int) -> Plan:
    """The cheapest way to get CG and GG for a layer at ``t`` positions and ``c`` centres
    (multiply-adds per example; the per-example gradient costs t·d_in·d_out once, then serves both)."""
    w = t * d_in * d_out
    cg = {"direct": c * t * (d_in + d_out + 1), "gradient": c * d_in * (d_out + 1)}
    gg = {"direct": t * t * (d_in + d_out + 1), "gradient": d_in * d_out}
    best = None
    for a in cg:
        for b in gg:
            cost = cg[a] + gg[b] + (w if "gradient" in (a, b) else 0)
            if best is None or cost < best[0]:
                best = (cost, Plan(a, b))
    return best[1]


def centre_norms(ci: torch.Tensor, co: torch.Tensor) -> torch.Tensor:
    """CC_k = ‖Ci_k‖²‖Co_k‖² (C)."""
    return (ci * ci).sum(1) * (co * co).sum(1)


def _terms_flat(a: torch.Tensor, g: torch.Tensor, ci: torch.Tensor, co: torch.Tensor):
    cg = (a @ ci.T) * (g @ co.T)
    gg = (a * a).sum(1) * (g * g).sum(1)
    return cg, gg


def _terms_positional(a: torch.Tensor, g: torch.Tensor, ci: torch.Tensor, co: torch.Tensor, p: Plan):
    w = a @ g.transpose(1, 2) if "gradient" in (p.cg, p.gg) else None  # B × d_in × d_out
    if p.cg == "direct":
        cg = (torch.einsum("ki,bit->bkt", ci, a) * torch.einsum("ko,bot->bkt", co, g)).sum(2)
    else:
        cg = ((w @ co.T) * ci.T.unsqueeze(0)).sum(1)  # Σ_io Ci_ki W_io Co_ko
    if p.gg == "direct":
        gg = ((a.transpose(1, 2) @ a) * (g.transpose(1, 2) @ g)).sum((1, 2))
    else:
        gg = (w * w).sum((1, 2))
    return cg, gg


def _per_example_size(f: Factors, c: int, p: Plan | None) -> int:
    if p is None:
        return 1
    d_in, d_out, t = f.a.shape[1], f.g.shape[1], f.positions
    size = (2 * c * t if p.cg == "direct" else 0) + (2 * t * t if p.gg == "direct" else 0)
    return size + (d_in * (d_out + c) if "gradient" in (p.cg, p.gg) else 0)


def layer_terms(f: Factors, ci: torch.Tensor, co: torch.Tensor, p: Plan | None = None):
    """(CG: B × C, GG: B) of one layer against centres (``ci`` C × d_in, ``co`` C × d_out)."""
    if f.a.dim() == 2:
        return _terms_flat(f.a, f.g, ci, co)
    p = p or plan(f.a.shape[1], f.g.shape[1], f.positions, ci.shape[0])
    step = max(1, CHUNK_ELEMENTS // max(_per_example_size(f, ci.shape[0], p), 1))
    parts = [_terms_positional(f.a[i : i + step], f.g[i : i + step], ci, co, p) for i in range(0, len(f.a), step)]
    return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])


def squared_distances(factors: list[Factors], ci: list[torch.Tensor], co: list[torch.Tensor],
                      plans: list[Plan | None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖g_i − C_k‖² summed over layers: B × C, ‖g_i‖²: B) from rank-1 factors and centres."""
    dist = gnorm = None
    for n, f in enumerate(factors):
        cg, gg = layer_terms(f, ci[n], co[n], plans[n] if plans else None)
        d = centre_norms(ci[n], co[n]).unsqueeze(0) - 2 * cg + gg.unsqueeze(1)
        dist = d if dist is None else dist + d
        gnorm = gg if gnorm is None else gnorm + gg
    return dist, gnorm


def input_summary(f: Factors) -> torch.Tensor:
    """A_i for the centre update: B × d_in (the mean over positions of a positional layer)."""
    return f.a if f.a.dim() == 2 else f.a.mean(2)


def output_summary(f: Factors) -> torch.Tensor:
    """G_i for the centre update: B × d_out (the sum over positions of a positional layer)."""
    return f.g if f.g.dim() == 2 else f.g.sum(2)
