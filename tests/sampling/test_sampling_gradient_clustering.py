"""The gradient-clustering sampler: unbiased stratified draws, pure clusters on duplicated data, the
split rule, exact state round trips, and snapshot work that is counted and reserved in the budget."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwise.budget import Budget
from trainwise.errors import ConfigError
from trainwise.gradstats import GradStats
from trainwise.gradstats.cluster import pick_split
from trainwise.gradstats.meter import variance_of
from trainwise.losses import reduce_loss, soft_cross_entropy
from trainwise.sampling import SAMPLERS, SamplerContext


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def mlp(d_in=12, classes=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d_in, 16), nn.ReLU(inplace=True), nn.Linear(16, classes)).double()


def build(x, y, model, batch=10, epochs=4, on_work=lambda f, b: None, charged=False, **settings):
    n = len(y)
    ctx = SamplerContext(Budget(epochs, batch, n), 0, y, torch.device("cpu"))
    s = SAMPLERS.build({"name": "gradient-clustering", **settings}, ctx)
    s.attach(GradStats.for_classification(model, x, y, int(y.max()) + 1, on_work=on_work, charged=charged))
    return s


def flat_grad(model, x, y, idx, weight=None):
    onehot = nn.functional.one_hot(y[idx], int(y.max()) + 1).double()
    loss = reduce_loss(soft_cross_entropy(model(x[idx]), onehot), weight)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])


def clustered_data(n=300, d=12, seed=1):
    """Inputs from 5 blobs of unequal sizes: clusters of unequal sizes, so unweighted draws are biased."""
    g = torch.Generator().manual_seed(seed)
    blob = torch.multinomial(torch.tensor([0.45, 0.25, 0.15, 0.1, 0.05]), n, replacement=True, generator=g)
    centres = torch.randn(5, d, generator=g, dtype=torch.float64) * 2
    x = centres[blob] + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64)
    return x, blob % 3


def per_example_grads(model, x, y):
    """N x D: the gradient of each example's loss (the MLP has no batch-dependent layer)."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}
    onehot = nn.functional.one_hot(y, int(y.max()) + 1).double()

    def loss1(p, xi, ti):
        return soft_cross_entropy(functional_call(model, p, (xi[None],)), ti[None])[0]

    g = vmap(grad(loss1), in_dims=(None, 0, 0))(params, x, onehot)
    return torch.cat([g[k].reshape(len(y), -1) for k in params], 1)


def test_mean_of_stratified_draws_is_the_full_gradient():
    x, y = clustered_data()
    model = mlp()
    s = build(x, y, model, clusters=5, em_iters=3)
    s.begin_epoch(0)
    s.begin_epoch(1)  # the first snapshot
    assert s.cycle is not None and s.cycle.m >= 2 and len(set(s.cycle.sizes.tolist())) > 1
    per_ex = per_example_grads(model, x, y)
    assert torch.allclose(flat_grad(model, x, y, torch.arange(5)), per_ex[:5].mean(0))
    full = per_ex.mean(0)
    weighted, plain = torch.zeros(2000, len(y), dtype=torch.float64), torch.zeros(2000, len(y), dtype=torch.float64)
    for t in range(2000):  # a draw's gradient is (1/B) sum_i w_i g_i: row t of a T x N matrix
        sel = s.next_batch(t % 30, None)
        weighted[t].index_add_(0, sel.idx, sel.weight.double() / len(sel.idx))
        plain[t].index_add_(0, sel.idx, torch.full((len(sel.idx),), 1.0 / len(sel.idx), dtype=torch.float64))
    g = torch.Generator().manual_seed(7)
    directions = torch.cat([full[None] / full.norm(), torch.randn(4, len(full), generator=g, dtype=torch.float64)])

    def z_scores(draws):
        proj = draws @ (per_ex @ directions.T)  # T x 5 projections of the draws' gradients
        se = proj.std(0) / len(draws) ** 0.5
        return (proj.mean(0) - directions @ full) / se

    assert z_scores(weighted).abs().max() <= 3
    assert z_scores(plain).abs().max() > 3  # the test has the power to see a biased estimator


def duplicated(model_inputs=12):
    """10 distinct examples x 100 copies, in a random order."""
    g = torch.Generator().manual_seed(3)
    distinct = torch.rand(10, model_inputs, generator=g, dtype=torch.float64)
    which = torch.randperm(1000, generator=g) % 10
    return distinct[which], (torch.arange(10) % 3)[which], which


def test_duplicated_data_gives_pure_clusters_and_near_zero_variance():
    x, y, which = duplicated()
    model = mlp()
    s = build(x, y, model, batch=20, clusters=10, em_iters=10)
    s.begin_epoch(0)
    s.begin_epoch(1)
    c = s.cycle
    for k in range(10):
        members = c.members[c.offsets[k] : c.offsets[k + 1]]
        assert len(members) == 100 and len(set(which[members].tolist())) == 1  # pure and complete
    draws = [s.next_batch(i, None) for i in range(50)]
    gc_var, _ = variance_of(flat_grad(model, x, y, d.idx, d.weight) for d in draws)
    g = torch.Generator().manual_seed(0)
    uni_var, _ = variance_of(flat_grad(model, x, y, torch.randperm(1000, generator=g)[:20]) for _ in range(50))
    assert uni_var > 1e-4 and gc_var < 1e-12 * uni_var


def test_split_gives_the_small_cluster_half_of_the_most_distorted_one():
    sizes, total = torch.tensor([0, 40, 30, 3]), torch.tensor([0.0, 5.0, 9.0, 100.0])
    assert pick_split(sizes, total, min_size=1) == (0, 3)  # cluster 3 is not small: it may donate
    assert pick_split(sizes, total, min_size=5) == (0, 2)  # now it is small: the largest distortion among the rest
    assert pick_split(torch.tensor([2, 40]), total[:2], min_size=1) is None


def test_split_moves_half_a_cluster_into_an_empty_one():
    from trainwise.gradstats.cluster import em_iteration

    x, y = clustered_data()
    model = mlp()
    probe = GradStats.for_classification(model, x, y, 3)
    huge = 1e3  # centre 1 is so far from everything that nobody is assigned to it
    ci = [torch.zeros(2, 12, dtype=torch.float64), torch.zeros(2, 16, dtype=torch.float64)]
    co = [torch.zeros(2, 16, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64)]
    ci[0][1], co[0][1] = huge, huge
    assign, sizes, _, _, _ = em_iteration(probe.factors, len(y), ci, co, 1, torch.Generator().manual_seed(0))
    assert sizes.tolist() == [150, 150] and torch.bincount(assign).tolist() == [150, 150]


def test_state_round_trip_continues_the_same_draws():
    x, y = clustered_data()
    model = mlp()
    a = build(x, y, model, clusters=4)
    a.begin_epoch(0)
    a.begin_epoch(1)
    for i in range(7):
        a.next_batch(i, None)
    b = build(x, y, model, clusters=4)
    b.load_state_dict(a.state_dict())
    for i in range(7, 40):
        sa, sb = a.next_batch(i % 30, None), b.next_batch(i % 30, None)
        assert torch.equal(sa.idx, sb.idx) and torch.equal(sa.weight, sb.weight)


def test_epoch_zero_is_uniforms_permutation():
    x, y = clustered_data()
    s = build(x, y, mlp())
    u = SAMPLERS.build("uniform", SamplerContext(Budget(4, 10, len(y)), 0, y, torch.device("cpu")))
    assert s.begin_epoch(0) == u.begin_epoch(0)
    assert all(torch.equal(s.next_batch(i, None).idx, u.next_batch(i, None).idx) for i in range(30))


def test_snapshot_work_is_counted_and_reserved():
    x, y = clustered_data()
    work = []
    s = build(x, y, mlp(), epochs=8, on_work=lambda f, b: work.append((f, b)), charged=True, em_iters=2,
              snapshot_every=2, min_size=0)  # no split: a snapshot is exactly 2 passes of 300
    s.begin_epoch(0)
    assert s.reserved_work("steps") == 0.0
    # 8 x 300 samples of budget: epoch 0, snapshot (600) at epoch 1, epochs 1-2, snapshot at epoch 3
    # (900 left: it fits), epoch 3; the one at epoch 5 is never reached
    assert s.reserved_work("forward_backward") == 1200
    for i in range(30):
        s.next_batch(i, None)
    s.begin_epoch(1)
    assert sum(f for f, _ in work) == sum(b for _, b in work) == s.snapshot_samples == 600
    assert s.reserved_work("backprop_samples") == 600
    for i in range(30):
        s.next_batch(i, None)
    s.begin_epoch(2)
    for i in range(30):
        s.next_batch(i, None)
    s.begin_epoch(3)
    assert s.snapshots == 2 and s.reserved_work("forward_backward") == 0


def test_bad_settings_are_one_line_config_errors():
    ctx = SamplerContext(Budget(2, 10, 100), 0, torch.zeros(100, dtype=torch.long), torch.device("cpu"))
    with pytest.raises(ConfigError, match="clusters"):
        SAMPLERS.build({"name": "gradient-clustering", "clusters": 0}, ctx)
    with pytest.raises(ConfigError, match="allowed: clusters, snapshot_every"):
        SAMPLERS.build({"name": "gradient-clustering", "cluster": 10}, ctx)


@pytest.mark.parametrize("unit", ["steps", "forward_backward"])
def test_a_run_paused_after_a_snapshot_resumes_to_identical_weights(tmp_path, unit):
    """The checkpoint (loaded with weights_only) carries the clusters, centres, draw cycle and charges."""
    from helpers import trial_dict
    from trainwise.config import TrialConfig
    from trainwise.train import train

    cfg = TrialConfig(**trial_dict(sampler={"name": "gradient-clustering", "clusters": 3, "em_iters": 1},
                                   model={"name": "mlp", "hidden": 16},
                                   train={"epochs": 6, "batch_size": 32, "threads": 1, "budget_unit": unit}))
    ref = train(cfg, tmp_path / "ref", progress=False)
    paused = train(cfg, tmp_path / "run", progress=False, until=11)  # epoch 1, after the first snapshot
    assert paused["steps"] == 11
    ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ck["sampler"]["snapshots"] == 1 and ck["sampler"]["cycle"]
    resumed = train(cfg, tmp_path / "run", resume=True, progress=False)
    a = torch.load(tmp_path / "ref" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert ref["samples_forwarded"] == resumed["samples_forwarded"] > ref["steps"] * 32  # snapshots counted
    if unit == "forward_backward":  # charged: fewer steps than the budget's 48, the schedule ends at final_lr
        import json

        assert ref["steps"] < 48 and ref["samples_backpropagated"] <= 48 * 32 + 32
        from trainwise.budget import lr_at

        # the snapshots to come were reserved: every step's LR is on the one line to final_lr at the real end
        for r in map(json.loads, (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()):
            assert r["lr"] == pytest.approx(lr_at(r["step"] - 1, ref["steps"], 0.1), rel=1e-6)
