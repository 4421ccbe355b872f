"""Stratified draws over clusters with unbiased loss weights (Faghri et al., "A Study of Gradient
Variance in Deep Learning", arXiv:2007.04532, §3; public code fartashf/gvar_code ``data.py``
``GlusterSampler``, ``estim/gluster.py``).

Draws cycle through the M non-empty clusters: each round visits them in a fresh random order, and a
visit takes the next item of that cluster's list, which is reshuffled each time it is used up. An
example of cluster k gets the loss weight M·N_k/N: a draw's cluster is uniform over the M
clusters and its item uniform within the cluster, so E[w·g] = Σ_k (1/M)(M·N_k/N) ḡ_k = ḡ, the
full-batch gradient, whatever the batch size. Drawing a batch costs O(B log B + C) (a sort of the
batch's clusters, one slice per cluster present), independent of N.
"""

from __future__ import annotations

import torch


class StratifiedCycle:
    def __init__(self, assign: torch.Tensor, c: int, gen: torch.Generator):
        """``assign``: the cluster of each of the N examples (long, CPU)."""
        self.n = len(assign)
        self.sizes = torch.bincount(assign, minlength=c)
        order = torch.randperm(self.n, generator=gen)  # each cluster's list in a random order
        self.members = order[torch.sort(assign[order], stable=True).indices]
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(self.sizes, 0)])
        self.ptr = torch.zeros(c, dtype=torch.long)
        self.nonempty = (self.sizes > 0).nonzero().squeeze(1)
        self.round = torch.empty(0, dtype=torch.long)
        self.round_pos = 0

    @property
    def m(self) -> int:
        return len(self.nonempty)

    def weights(self, clusters: torch.Tensor) -> torch.Tensor:
        """M·N_k/N for each drawn cluster (float32)."""
        return (self.m * self.sizes[clusters].double() / self.n).float()

    def _clusters(self, k: int, gen: torch.Generator) -> torch.Tensor:
        parts = []
        while k > 0:
            if self.round_pos >= len(self.round):
                self.round, self.round_pos = self.nonempty[torch.randperm(self.m, generator=gen)], 0
            part = self.round[self.round_pos : self.round_pos + k]
            self.round_pos += len(part)
            k -= len(part)
            parts.append(part)
        return torch.cat(parts) if parts else torch.empty(0, dtype=torch.long)

    def _take(self, c: int, k: int, gen: torch.Generator) -> torch.Tensor:
        lo, size = int(self.offsets[c]), int(self.sizes[c])
        parts = []
        while k > 0:
            p = int(self.ptr[c])
            if p >= size:  # used up: reshuffle the list
                seg = self.members[lo : lo + size]
                self.members[lo : lo + size] = seg[torch.randperm(size, generator=gen)]
                p = 0
            part = self.members[lo + p : lo + min(size, p + k)]
            self.ptr[c] = p + len(part)
            k -= len(part)
            parts.append(part)
        return torch.cat(parts)

    def draw(self, k: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``k`` example indices and their loss weights."""
        clusters = self._clusters(k, gen)
        counts = torch.bincount(clusters, minlength=len(self.sizes)).tolist()
        idx = torch.empty(k, dtype=torch.long)  # the draws of cluster c fill the positions of c, in order
        idx[torch.argsort(clusters, stable=True)] = torch.cat([self._take(c, m, gen) for c, m in enumerate(counts) if m])
        return idx, self.weights(clusters)

    def state_dict(self) -> dict:
        return {"sizes": self.sizes, "members": self.members, "offsets": self.offsets, "ptr": self.ptr,
                "nonempty": self.nonempty, "round": self.round, "round_pos": self.round_pos}

    @classmethod
    def from_state(cls, sd: dict) -> "StratifiedCycle":
        self = cls.__new__(cls)
        self.sizes, self.members, self.offsets = sd["sizes"], sd["members"].clone(), sd["offsets"]
        self.ptr, self.nonempty, self.round = sd["ptr"].clone(), sd["nonempty"], sd["round"]  # (updated in place)
        self.round_pos = int(sd["round_pos"])
        self.n = int(self.sizes.sum())
        return self
