"""Gradient clustering: k-means of per-example gradients with rank-1 centres, weighted by cluster size
(Faghri, Duvenaud, Fleet & Ba, "A Study of Gradient Variance in Deep Learning", arXiv:2007.04532, §3;
public code fartashf/gvar_code, ``gluster/gluster.py`` ``GradientClusterBatch``).

One EM iteration (``em_iteration``) is one pass over the training set in a random order:

- **assign**: example i goes to argmin_k (N_k + 1)·‖g_i − C_k‖², the size-weighted distance whose
  sum is the variance of the stratified sampler. As in the reference, N_k counts the examples
  assigned to k so far in this pass (zeroed when the pass starts, updated after each batch).
- **split**: if the smallest cluster has fewer than ``min_size`` examples, it receives a random
  half of the cluster with the largest total (weighted) distortion among those that are not
  small; one split per pass, as the reference.
- **update**: Ci_k = mean of A_i over the cluster, Co_k = mean of G_i (positional layers: A
  averaged, G summed over positions, ``rank1.input_summary`` / ``output_summary``); an empty
  cluster gets a zero centre.

The reference makes a second pass to accumulate the new centres; the model does not change in
between, so we accumulate them during the assignment pass and only recompute the factors of the
examples a split moves (half a cluster, at most N/2). Centres start as small uniform random
values, as the reference's (rand/(d_in + d_out)); later snapshots start from the previous centres.
"""

from __future__ import annotations

from typing import Callable

import torch

from .rank1 import Factors, Plan, input_summary, output_summary, plan, squared_distances

FactorsOf = Callable[[torch.Tensor], list[Factors]]  # training indices -> per-layer factors (counted work)


def init_centres(dims: list[tuple[int, int]], c: int, gen: torch.Generator,
                 dtype: torch.dtype = torch.float32) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Small random rank-1 centres, uniform in [0, 1/(d_in + d_out)) as the reference."""
    ci = [torch.rand(c, d_in, generator=gen, dtype=torch.float64).to(dtype) / (d_in + d_out) for d_in, d_out in dims]
    co = [torch.rand(c, d_out, generator=gen, dtype=torch.float64).to(dtype) / (d_in + d_out) for d_in, d_out in dims]
    return ci, co


def weighted_assign(dist: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cluster, (N_k + 1)·‖g_i − C_k‖² at that cluster) per example of a B × C distance matrix."""
    w = dist * (counts.to(dist.dtype) + 1).unsqueeze(0)
    best, k = w.min(1)
    return k, best


def pick_split(sizes: torch.Tensor, total: torch.Tensor, min_size: int) -> tuple[int, int] | None:
    """(small, donor): the smallest cluster if it has fewer than ``min_size`` examples, and the
    cluster of largest total distortion among the others; None when there is nothing to split."""
    small = int(torch.argmin(sizes))
    if int(sizes[small]) >= min_size:
        return None
    eligible = sizes >= max(min_size, 2)  # a donor gives half: it needs two members at least
    if not bool(eligible.any()):
        return None
    donor = int(torch.argmax(torch.where(eligible, total.double(), float("-inf"))))
    return small, donor


class Accumulator:
    """Per-cluster sums of the centre-update summaries (float64), the sizes and the distortions."""

    def __init__(self, dims: list[tuple[int, int]], c: int, device):
        self.a = [torch.zeros(c, d_in, dtype=torch.float64, device=device) for d_in, _ in dims]
        self.g = [torch.zeros(c, d_out, dtype=torch.float64, device=device) for _, d_out in dims]
        self.sizes = torch.zeros(c, dtype=torch.long, device=device)
        self.total = torch.zeros(c, dtype=torch.float64, device=device)

    def add(self, factors: list[Factors], k: torch.Tensor, sign: int = 1) -> None:
        for n, f in enumerate(factors):
            self.a[n].index_add_(0, k, input_summary(f).double(), alpha=sign)
            self.g[n].index_add_(0, k, output_summary(f).double(), alpha=sign)
        self.sizes.index_add_(0, k, torch.full_like(k, sign))

    def centres(self, dtype: torch.dtype) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        n = self.sizes.clamp(min=1).double().unsqueeze(1)
        return [(s / n).to(dtype) for s in self.a], [(s / n).to(dtype) for s in self.g]


def batches_of(idx: torch.Tensor, size: int):
    return (idx[i : i + size] for i in range(0, len(idx), size))


def em_iteration(factors_of: FactorsOf, n: int, ci: list[torch.Tensor], co: list[torch.Tensor], min_size: int,
                 gen: torch.Generator, batch: int = 256, plans: list[Plan | None] | None = None):
    """One assign + split + update pass over examples 0..n-1 in a random order (``gen``).

    Returns ``(assign, sizes, total, ci, co)``: the cluster of each example (n, long, CPU), the
    cluster sizes, the total weighted distortion per cluster (before the split), and the new
    centres."""
    c = ci[0].shape[0]
    dims = [(x.shape[1], y.shape[1]) for x, y in zip(ci, co)]
    device = ci[0].device
    acc = Accumulator(dims, c, device)
    assign = torch.empty(n, dtype=torch.long)
    for idx in batches_of(torch.randperm(n, generator=gen), batch):
        fs = factors_of(idx)
        if plans is None:  # the first batch: the layers' plans, and centres in the factors' dtype
            plans = [None if f.a.dim() == 2 else plan(f.a.shape[1], f.g.shape[1], f.positions, c) for f in fs]
            ci, co = [x.to(fs[0].a.dtype) for x in ci], [x.to(fs[0].a.dtype) for x in co]
        dist, _ = squared_distances(fs, ci, co, plans)
        k, d = weighted_assign(dist, acc.sizes)
        acc.total.index_add_(0, k, d.double())
        acc.add(fs, k)
        assign[idx] = k.cpu()
    total = acc.total.clone()
    split = pick_split(acc.sizes.cpu(), total.cpu(), min_size)
    if split is not None:
        small, donor = split
        members = (assign == donor).nonzero().squeeze(1)
        moved = members[torch.randperm(len(members), generator=gen)[: len(members) // 2]]
        for idx in batches_of(moved, batch):  # their summaries leave the donor and join the small cluster
            fs = factors_of(idx)
            acc.add(fs, torch.full((len(idx),), donor, dtype=torch.long, device=device), sign=-1)
            acc.add(fs, torch.full((len(idx),), small, dtype=torch.long, device=device))
        assign[moved] = small
    ci, co = acc.centres(ci[0].dtype)
    return assign, acc.sizes.cpu(), total.cpu(), ci, co
