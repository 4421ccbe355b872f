import math

import torch

from helpers import trial_dict
from trainwise.budget import Budget, lr_at
from trainwise.sampling import SAMPLERS, SamplerContext
from trainwise.study.config import TrialConfig
from trainwise.train import train


def make(n=200, b=1.0, batch=10, epochs=8, seed=0, **kw):
    # drop_last off: these tests look at which samples an epoch plans, all of which are trained on
    ctx = SamplerContext(Budget(epochs, batch, n, b, drop_last=False), seed, torch.zeros(n, dtype=torch.long), torch.device("cpu"))
    return SAMPLERS.build({"name": "infobatch", **kw}, ctx)


def epoch(s, e):
    sels = [s.next_batch(i, None) for i in range(s.begin_epoch(e))]
    idx = torch.cat([x.idx for x in sels])
    w = None if sels[0].weight is None else torch.cat([x.weight for x in sels])
    return idx, w


def test_nothing_is_pruned_before_losses_are_known():
    idx, w = epoch(make(), 0)
    assert sorted(idx.tolist()) == list(range(200)) and w is None


def test_prunes_r_of_the_below_mean_only_and_rescales_the_kept_ones():
    s = make(prune_ratio=0.3)
    loss = torch.rand(200, generator=torch.Generator().manual_seed(1)) * 2
    s.feedback(torch.arange(200), loss, torch.zeros(200))
    idx, w = epoch(s, 0)
    low = loss < loss.mean()
    pruned = torch.ones(200, dtype=torch.bool)
    pruned[idx] = False
    assert bool(low[pruned].all())  # only below-mean samples are pruned
    assert int(pruned.sum()) == math.floor(0.3 * int(low.sum()))  # a fraction r of them
    assert len(set(idx.tolist())) == len(idx)
    assert torch.allclose(w, torch.where(low[idx], 1 / 0.7, 1.0).float())  # 1/(1 - r) on kept low-loss


def test_unseen_samples_are_never_pruned_and_the_mean_is_over_seen_ones():
    s = make(n=100, b=1.0)
    s.feedback(torch.arange(50), torch.linspace(0, 1, 50), torch.zeros(50))
    idx, _ = epoch(s, 0)
    assert set(range(50, 100)) <= set(idx.tolist())
    assert len(idx) == 100 - math.floor(0.5 * 25)  # 25 of the 50 seen are below their mean 0.5


def test_no_pruning_in_the_last_one_minus_delta_of_training():
    s = make(epochs=8, delta=0.75)  # prune in epochs 0..5, not in 6, 7
    s.feedback(torch.arange(200), torch.rand(200, generator=torch.Generator().manual_seed(2)), torch.zeros(200))
    lengths = [len(epoch(s, e)[0]) for e in range(8)]
    assert all(n < 200 for n in lengths[:6]) and lengths[6:] == [200, 200]
    assert epoch(s, 8)[1] is None
    five = make(epochs=5)  # default delta 0.875: the last 12.5% lies in epoch 4, which must not prune
    assert [five.pruning(e) for e in range(5)] == [True, True, True, True, False]


def test_budget_fraction_limits_the_candidates():
    s = make(n=200, b=0.5)
    s.feedback(torch.arange(200), torch.rand(200, generator=torch.Generator().manual_seed(3)), torch.zeros(200))
    idx, _ = epoch(s, 0)
    assert 50 <= len(idx) < 100


def test_epoch_length_and_lr_schedule_follow_the_real_steps(tmp_path):
    cfg = TrialConfig(**trial_dict(sampler={"name": "infobatch", "delta": 0.5},
                                   train={"epochs": 4, "batch_size": 16, "eval_every": 1000}))
    full = Budget(4, 16, 256, 1.0).total_steps
    r = train(cfg, tmp_path, progress=False)
    assert r["epochs"] == 4  # the run is E (shrunk) epochs
    assert r["steps"] == r["total_steps"] < full  # fewer steps than the unpruned schedule
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    lengths = ck["sampler"]["lengths"]
    assert int(lengths.sum()) == r["steps"] and int(lengths[0]) == 16 and int(lengths[1]) < 16
    assert lengths[2:].tolist() == [16, 16]  # delta = 0.5: the last two epochs are unpruned
    last = ck["history"][-1]
    assert last["step"] == r["steps"]
    # the LR of the last step is the schedule's last value over the *real* number of steps
    assert math.isclose(last["lr"], lr_at(r["steps"] - 1, r["steps"], 0.1, "linear"), rel_tol=1e-9)
