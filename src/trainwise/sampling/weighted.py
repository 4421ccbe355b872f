"""Scalable weighted sampling shared by the score-based samplers.

- ``sample_without_replacement(w, k, gen)``: k distinct indices drawn *sequentially* in
  proportion to ``w`` (each draw ∝ w among the not-yet-drawn), by exponential keys
  (Efraimidis & Spirakis, "Weighted random sampling with a reservoir", IPL 2006): key_i =
  E_i / w_i with E_i ~ Exp(1); the k smallest keys are such a sample. One O(N) pass
  (``kthvalue`` finds the threshold, no full sort), done once per epoch, so its cost per
  batch is O(N / (steps per epoch)) = O(B / b), independent of N.
- ``sample_with_replacement(w, k, gen)``: k i.i.d. draws ∝ ``w`` by inverse CDF
  (cumulative sum + binary search). Only used on small pools (the P·B presample), so a
  batch never costs O(N).
- ``IndexStream``: an endless stream of uniformly shuffled indices (a fresh permutation of
  0..N-1 each time one is used up), with its position in the state so resume is exact.
  Refilling costs O(N) once per N indices consumed, i.e. O(1) per index.
"""

from __future__ import annotations

import torch


def sample_without_replacement(weights: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """``k`` distinct indices drawn without replacement ∝ ``weights`` (>= 0), in random order.

    If fewer than ``k`` weights are positive, all positive ones are taken and the rest are
    filled with zero-weight indices."""
    n = len(weights)
    if not 0 < k <= n:
        raise ValueError(f"cannot draw {k} of {n} without replacement")
    keys = torch.empty(n, dtype=torch.float32).exponential_(generator=gen) / weights.float()
    if k == n:
        idx = torch.arange(n)
    else:
        thr = torch.kthvalue(keys, k).values
        idx = (keys < thr).nonzero().squeeze(1)
        if len(idx) < k:  # ties at the threshold (or zero weights: keys = inf)
            tie = (keys == thr).nonzero().squeeze(1)
            idx = torch.cat([idx, tie[: k - len(idx)]])
    return idx[torch.randperm(len(idx), generator=gen)]


def sample_with_replacement(weights: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """``k`` i.i.d. indices with P(i) = weights[i] / sum(weights) (inverse CDF)."""
    cdf = torch.cumsum(weights.double(), 0)
    u = torch.rand(k, generator=gen, dtype=torch.float64) * cdf[-1]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=len(weights) - 1)


class IndexStream:
    """Endless uniformly shuffled indices of 0..n-1: successive random permutations."""

    def __init__(self, n: int, gen: torch.Generator):
        self.n, self.gen = n, gen
        self.perm = torch.empty(0, dtype=torch.long)
        self.pos = 0

    def take(self, k: int) -> torch.Tensor:
        parts = []
        while k > 0:
            if self.pos >= len(self.perm):
                self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
            part = self.perm[self.pos : self.pos + k]
            self.pos += len(part)
            k -= len(part)
            parts.append(part)
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def state_dict(self) -> dict:
        return {"perm": self.perm, "pos": self.pos}

    def load_state_dict(self, sd: dict) -> None:
        self.perm, self.pos = sd["perm"], int(sd["pos"])
