"""Retrieval evaluation by brute force: Recall@K both ways, median and mean rank, R-sum, in folds.

As VSE++'s ``evaluation.py`` (Faghri et al., BMVC 2018; fartashf/vsepp): every query is scored
against every candidate of its fold, S = a bᵀ on L2-normalised embeddings. A pair's group says
which items match: view-A queries are the groups (one a per group), their positives every b of
the group (5 captions of an image: the query's rank is its best positive's); view-B queries are
the b's, their positive the a of their group. ``rank`` is the number of non-positive candidates
scoring at least as high as the best positive (0 = first; ties count against the query, so a
collapsed model ranks nothing first). R@K = % of queries with rank < K; medr = ⌊median⌋ + 1 and
meanr = mean + 1 (1-based, as the reference); R-sum = R@1 + R@5 + R@10 of both directions.

Folds (COCO-1K): the groups in ascending id order are cut into folds of ``fold_size`` groups and
the metrics averaged over folds; a remainder smaller than a fold is left out, and a split with
fewer groups than one fold is one fold.
"""

from __future__ import annotations

import torch

from ..accel import to_device
from ..data import storage
from ..data.base import as_float
from .losses import spread

KS = (1, 5, 10)
FOLD_SIZE = 1000


def ranks(scores: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Rank of each query (row): non-positive candidates scoring >= its best positive's score."""
    best = scores.masked_fill(~positive, float("-inf")).max(1, keepdim=True).values
    return ((scores >= best) & ~positive).sum(1)


def rank_metrics(r: torch.Tensor, suffix: str) -> dict[str, float]:
    r = r.double()
    out = {f"r{k}_{suffix}": float((r < k).double().mean() * 100) for k in KS}
    out[f"medr_{suffix}"] = float(torch.quantile(r, 0.5).floor() + 1)  # numpy's median (mean of the middles)
    out[f"meanr_{suffix}"] = float(r.mean() + 1)
    return out


def fold_metrics(a: torch.Tensor, b: torch.Tensor, groups: torch.Tensor) -> dict[str, float]:
    """Metrics of one fold of pairs (a_i, b_i) with group ids ``groups``."""
    uniq, inv = torch.unique(groups, return_inverse=True)
    n = len(groups)
    first = torch.full((len(uniq),), n, dtype=torch.long, device=groups.device)
    first = first.scatter_reduce(0, inv, torch.arange(n, device=groups.device), "amin")
    positive = inv[None, :] == torch.arange(len(uniq), device=groups.device)[:, None]  # (groups, pairs)
    queries_a = a[first]
    out = rank_metrics(ranks(queries_a @ b.T, positive), "ab")
    out |= rank_metrics(ranks(b @ queries_a.T, positive.T), "ba")
    out["rsum"] = sum(out[f"r{k}_{d}"] for k in KS for d in ("ab", "ba"))
    return out


def fold_ids(groups: torch.Tensor, fold_size: int = FOLD_SIZE) -> tuple[torch.Tensor, int]:
    """Each pair's fold (−1: in the left-out remainder) and the number of folds."""
    _, inv = torch.unique(groups, return_inverse=True)
    n_groups = int(inv.max()) + 1 if len(inv) else 0
    folds = max(1, n_groups // fold_size)
    fold = inv // fold_size if n_groups >= fold_size else torch.zeros_like(inv)
    return fold.masked_fill(fold >= folds, -1), folds


def retrieval_metrics(a: torch.Tensor, b: torch.Tensor, groups: torch.Tensor,
                      fold_size: int = FOLD_SIZE) -> dict[str, float]:
    """Fold-averaged metrics of embeddings ``a``, ``b`` (n, E) of n pairs; also ``spread``."""
    fold, folds = fold_ids(groups, fold_size)
    per = [fold_metrics(a[fold == f], b[fold == f], groups[fold == f]) for f in range(folds)]
    out = {k: sum(m[k] for m in per) / folds for k in per[0]}
    out["spread"] = spread(torch.cat([a, b]))
    return out


@torch.no_grad()
def embed(model: torch.nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 1024
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Both views' embeddings of the pairs ``x`` (the model returns (n, 2, E)), float32, in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        out.append(model(as_float(to_device(chunk, device))).float())
        storage.note_read(x, chunk.numel() * chunk.element_size())
    model.train(was_training)
    e = torch.cat(out)
    return e[:, 0], e[:, 1]


def evaluate_retrieval(model: torch.nn.Module, x: torch.Tensor, groups: torch.Tensor, batch_size: int = 1024,
                       fold_size: int = FOLD_SIZE) -> dict[str, float]:
    a, b = embed(model, x, groups.device, batch_size)
    return retrieval_metrics(a, b, groups, fold_size)
