"""Recall@K, median/mean rank and R-sum against brute-force ranking, with several positives per
query and in folds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainwise.retrieval.evaluate import fold_ids, fold_metrics, ranks, retrieval_metrics


def brute_rank(scores: np.ndarray, positives: set[int]) -> int:
    """Sort the candidates; a query's rank is its best positive's place, non-positives tying with it
    ranked ahead (ties count against the query)."""
    best = max(scores[p] for p in positives)
    return sum(1 for c in range(len(scores)) if c not in positives and scores[c] >= best)


def brute_metrics(a: np.ndarray, b: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    uniq = sorted(set(groups.tolist()))
    first = {g: int(np.flatnonzero(groups == g)[0]) for g in uniq}
    r_ab = [brute_rank(b @ a[first[g]], set(np.flatnonzero(groups == g).tolist())) for g in uniq]
    a_q = np.stack([a[first[g]] for g in uniq])
    r_ba = [brute_rank(a_q @ b[j], {uniq.index(groups[j])}) for j in range(len(b))]
    out = {}
    for d, r in (("ab", np.array(r_ab)), ("ba", np.array(r_ba))):
        for k in (1, 5, 10):
            out[f"r{k}_{d}"] = 100.0 * np.mean(r < k)
        out[f"medr_{d}"] = float(np.floor(np.median(r)) + 1)
        out[f"meanr_{d}"] = float(r.mean() + 1)
    out["rsum"] = sum(out[f"r{k}_{d}"] for k in (1, 5, 10) for d in ("ab", "ba"))
    return out


def embeddings(n: int, seed: int, noise: float, coarse: bool = False):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 6, generator=g, dtype=torch.float64)
    a = z + noise * torch.randn(n, 6, generator=g, dtype=torch.float64)
    b = z + noise * torch.randn(n, 6, generator=g, dtype=torch.float64)
    if coarse:  # entries in {-1, 1}: integer scores, exact in any summation order, and many ties
        return a.sign(), b.sign()
    return torch.nn.functional.normalize(a, dim=1), torch.nn.functional.normalize(b, dim=1)


@pytest.mark.parametrize("positives, coarse", [(1, False), (1, True), (5, False), (3, True)])
def test_fold_metrics_equal_brute_force(positives, coarse):
    a, b = embeddings(60 * positives, positives, 1.0, coarse)
    groups = torch.arange(len(a)) // positives
    a = a[groups * positives]  # one a per group, shared by its pairs (as 5 captions share an image)
    got = fold_metrics(a, b, groups)
    want = brute_metrics(a.numpy(), b.numpy(), groups.numpy())
    assert got == pytest.approx(want)


def test_ranks_count_ties_against_the_query_so_a_collapsed_model_ranks_nothing_first():
    scores = torch.zeros(4, 4)
    assert ranks(scores, torch.eye(4, dtype=torch.bool)).tolist() == [3, 3, 3, 3]


def test_folds_average_per_fold_metrics_and_leave_out_the_remainder():
    a, b = embeddings(2500, 7, 0.8)
    groups = torch.arange(2500).flip(0)  # fold membership follows the group ids, not the row order
    fold, folds = fold_ids(groups, 1000)
    assert folds == 2 and (fold == -1).sum() == 500
    got = retrieval_metrics(a, b, groups, fold_size=1000)
    per = []
    for lo in (0, 1000):
        keep = (groups >= lo) & (groups < lo + 1000)
        per.append(brute_metrics(a[keep].numpy(), b[keep].numpy(), groups[keep].numpy()))
    want = {k: (per[0][k] + per[1][k]) / 2 for k in per[0]}
    assert {k: v for k, v in got.items() if k != "spread"} == pytest.approx(want)


def test_a_split_smaller_than_a_fold_is_one_fold():
    a, b = embeddings(300, 8, 0.5)
    groups = torch.arange(300)
    assert retrieval_metrics(a, b, groups, 1000)["rsum"] == pytest.approx(brute_metrics(a.numpy(), b.numpy(),
                                                                                           groups.numpy())["rsum"])
