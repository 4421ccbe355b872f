"""Hinge-based triplet losses on in-batch negatives: sum-of-hinges and max-of-hinges (VSE++).

Faghri, Fleet, Kiros & Fidler, "VSE++: Improving Visual-Semantic Embeddings with Hard Negatives",
BMVC 2018 (public code fartashf/vsepp, ``model.py`` ``ContrastiveLoss``). With L2-normalised
embeddings a (view A) and b (view B) of a batch of B positive pairs, S = a bᵀ. Query a_i ranks
the b's: hinge terms [α + S_ij − S_ii]₊ over j ≠ i; query b_i ranks the a's: [α + S_ji − S_ii]₊.
**Sum-of-hinges** (SH, VSE0) adds all of them; **max-of-hinges** (MH, VSE++) keeps only the
hardest negative of each query (the row max and the column max). No extra compute: the
negatives are the other pairs of the batch, and, as in the reference, a pair that shares a group
with the positive (another caption of the same image) counts as a negative.

Per-sample losses: sample i's loss is its row term (a_i as the query) plus its column term (b_i
as the query), so the losses of a batch **sum** to the reference's loss (which sums over the
batch, it does not average). With identical embeddings every hinge is α: MH = 2·B·α and
SH = 2·B·(B−1)·α (``collapse_value``), the plateau a collapsed model sits on.
"""

from __future__ import annotations

import torch

HINGE_LOSSES = ("sum-of-hinges", "max-of-hinges")


def hinge_terms(a: torch.Tensor, b: torch.Tensor, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The (B, B) hinge matrices: ``rows[i, j] = [α + S_ij − S_ii]₊`` (query a_i, negative b_j) and
    ``cols[i, j] = [α + S_ji − S_ii]₊`` (query b_i, negative a_j), diagonals zero."""
    s = a @ b.T
    pos = s.diagonal()
    eye = torch.eye(len(s), dtype=torch.bool, device=s.device)
    rows = (margin + s - pos[:, None]).clamp(min=0).masked_fill(eye, 0)
    cols = (margin + s.T - pos[:, None]).clamp(min=0).masked_fill(eye, 0)
    return rows, cols


def sum_of_hinges(a: torch.Tensor, b: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """Per-sample SH: every in-batch negative of a_i and of b_i (B values; their sum is VSE0's loss)."""
    rows, cols = hinge_terms(a, b, margin)
    return rows.sum(1) + cols.sum(1)


def max_of_hinges(a: torch.Tensor, b: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """Per-sample MH: the hardest in-batch negative of a_i and of b_i (their sum is VSE++'s loss).
    The gradient reaches only the hardest negative of each query (ties: the one ``max`` picks)."""
    rows, cols = hinge_terms(a, b, margin)
    return rows.max(1).values + cols.max(1).values


LOSSES = {"sum-of-hinges": sum_of_hinges, "max-of-hinges": max_of_hinges}


def collapse_value(name: str, batch_size: int, margin: float) -> float:
    """The batch loss (summed) when all embeddings are identical: 2Bα (MH) or 2B(B−1)α (SH)."""
    per_query = 1 if name == "max-of-hinges" else batch_size - 1
    return 2 * batch_size * per_query * margin


def spread(emb: torch.Tensor) -> float:
    """How far L2-normalised embeddings are from one point: the root mean squared distance to
    their mean, in [0, 1]; ~0 for a collapsed model."""
    return float((emb - emb.mean(0)).pow(2).sum(1).mean().sqrt())
