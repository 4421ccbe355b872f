"""Sum- and max-of-hinges against brute-force double loops; MH's gradient; collapse constants."""

from __future__ import annotations

import pytest
import torch

from trainwise.retrieval.losses import collapse_value, max_of_hinges, spread, sum_of_hinges


def similarities(n: int, seed: int, ties: bool) -> torch.Tensor:
    s = torch.rand(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1
    return (s * 4).round() / 4 if ties else s  # quarter steps: many equal scores and tied maxima


def brute_force(s: torch.Tensor, margin: float) -> tuple[list[float], list[float]]:
    """Per-sample SH and MH by the definition: query a_i over negatives b_j, query b_i over a_j."""
    n = len(s)
    sh, mh = [], []
    for i in range(n):
        row = [max(0.0, margin + float(s[i, j]) - float(s[i, i])) for j in range(n) if j != i]
        col = [max(0.0, margin + float(s[j, i]) - float(s[i, i])) for j in range(n) if j != i]
        sh.append(sum(row) + sum(col))
        mh.append(max(row, default=0.0) + max(col, default=0.0))
    return sh, mh


@pytest.mark.parametrize("n, seed, ties", [(2, 0, False), (7, 1, False), (16, 2, True), (33, 3, True)])
def test_both_losses_equal_brute_force_loops(n, seed, ties):
    s = similarities(n, seed, ties)
    eye = torch.eye(n, dtype=torch.float64)  # a = S, b = I: a bᵀ = S, any similarity matrix
    sh, mh = brute_force(s, 0.2)
    assert sum_of_hinges(s, eye, 0.2).tolist() == pytest.approx(sh, abs=1e-12)
    assert max_of_hinges(s, eye, 0.2).tolist() == pytest.approx(mh, abs=1e-12)


def test_the_batch_loss_is_the_sum_of_the_per_sample_losses_as_the_reference_sums():
    s = similarities(12, 4, False)
    eye = torch.eye(12, dtype=torch.float64)
    sh, mh = brute_force(s, 0.3)
    assert float(max_of_hinges(s, eye, 0.3).sum()) == pytest.approx(sum(mh))
    assert float(sum_of_hinges(s, eye, 0.3).sum()) == pytest.approx(sum(sh))


@pytest.mark.parametrize("ties", [False, True])
def test_max_of_hinges_gives_no_gradient_to_negatives_that_are_not_the_hardest(ties):
    n = 10
    s = similarities(n, 5, ties).requires_grad_()
    max_of_hinges(s, torch.eye(n, dtype=torch.float64), 0.2).sum().backward()
    g = s.grad
    off = ~torch.eye(n, dtype=torch.bool)
    rows = (0.2 + s - s.diagonal()[:, None]).clamp(min=0).masked_fill(~off, 0)
    cols = (0.2 + s - s.diagonal()[None, :]).clamp(min=0).masked_fill(~off, 0)
    # a negative gets gradient only as the one picked maximum of its row (query a_i) or column (query b_j)
    picked = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        if rows[i].max() > 0:
            picked[i, int(rows[i].argmax())] = True
        if cols[:, i].max() > 0:
            picked[int(cols[:, i].argmax()), i] = True
    assert (g[off & ~picked] == 0).all()
    assert (g[off & picked] != 0).sum() >= 1
    assert int((g[off] != 0).sum()) <= 2 * n  # at most one hardest negative per query


def test_identical_embeddings_give_the_collapse_constants():
    b, margin = 32, 0.2
    e = torch.nn.functional.normalize(torch.ones(b, 8), dim=1)
    assert float(max_of_hinges(e, e, margin).sum()) == pytest.approx(2 * b * margin)
    assert float(sum_of_hinges(e, e, margin).sum()) == pytest.approx(2 * b * (b - 1) * margin)
    assert collapse_value("max-of-hinges", b, margin) == pytest.approx(2 * b * margin)
    assert collapse_value("sum-of-hinges", b, margin) == pytest.approx(2 * b * (b - 1) * margin)
    assert spread(e) == pytest.approx(0, abs=1e-6)
    assert spread(torch.nn.functional.normalize(torch.randn(500, 8), dim=1)) > 0.9
