"""multi-attempt (arXiv:2211.14395): each step scores A candidate batches drawn from the samples
not yet used this epoch and trains on the lowest-loss one; every epoch stays a partition."""

from __future__ import annotations

import pytest
import torch

from helpers import trial_dict
import trainwise.train
from trainwise.budget import Budget
from trainwise.registry import Settings
from trainwise.sampling import SAMPLERS, SamplerContext
from trainwise.sampling.multi_attempt import MultiAttempt
from trainwise.study.config import TrialConfig
from trainwise.train import train

FAKE = torch.linspace(0.1, 3.0, 100)[torch.randperm(100, generator=torch.Generator().manual_seed(7))]


def make(name="multi-attempt", n=100, b=1.0, batch=8, seed=0, **settings):
    ctx = SamplerContext(Budget(3, batch, n, b), seed, torch.zeros(n, dtype=torch.long), torch.device("cpu"))
    return SAMPLERS.build({"name": name, **settings}, ctx)


class RecordingScorer:
    """A stub scorer: a fixed loss per sample; remembers every call's indices."""

    def __init__(self):
        self.calls = []

    def __call__(self, idx, probs=False):
        self.calls.append(idx.clone())
        return FAKE[idx], torch.exp(-FAKE[idx])


@pytest.mark.parametrize("budget", [1.0, 0.45])
def test_every_epoch_is_a_partition_of_uniforms_epoch(budget):
    s, u = make(b=budget, attempts=5), make("uniform", b=budget)
    for e in range(3):
        steps = s.begin_epoch(e)
        assert steps == u.begin_epoch(e)
        got = torch.cat([s.next_batch(i, RecordingScorer()).idx for i in range(steps)])
        assert len(set(got.tolist())) == len(got) == steps * 8  # no sample twice
        assert set(got.tolist()) <= set(u.order.tolist())  # the very samples uniform's epoch draws
        assert torch.equal(s.order, u.order)


def test_picks_the_candidate_with_the_lowest_mean_loss_from_the_unused_samples():
    s = make(attempts=6)
    steps = s.begin_epoch(0)
    used: set[int] = set()
    for i in range(steps):
        scorer = RecordingScorer()
        pool_before = set(s.pool.tolist())
        out = s.next_batch(i, scorer).idx
        if len(pool_before) >= 16:
            assert len(scorer.calls) == 6  # one counted forward per candidate
            cand = torch.stack(scorer.calls)
            assert set(cand.flatten().tolist()) <= pool_before and not (set(cand.flatten().tolist()) & used)
            means = FAKE[cand].mean(1)
            assert torch.equal(out, cand[int(means.argmin())])
            assert all(len(set(row.tolist())) == 8 for row in cand)  # a candidate has B distinct samples
        else:
            assert scorer.calls == []  # the last batch is taken as it lies
        used |= set(out.tolist())


def test_cost_counts_the_scoring_forwards():
    s = make(attempts=4)
    assert s.cost_per_step("forward_backward") == 8 + 4 * 8 / 3
    assert s.cost_per_step("steps") == 8


def test_same_seed_same_batches_and_resume_mid_epoch():
    a, b = make(seed=3, attempts=3), make(seed=3, attempts=3)
    a.begin_epoch(0), b.begin_epoch(0)
    for i in range(4):
        assert torch.equal(a.next_batch(i, RecordingScorer()).idx, b.next_batch(i, RecordingScorer()).idx)
    c = make(seed=9, attempts=3)
    c.load_state_dict(a.state_dict())
    rest_a = [a.next_batch(i, RecordingScorer()).idx for i in range(4, 12)]
    rest_c = [c.next_batch(i, RecordingScorer()).idx for i in range(4, 12)]
    assert all(torch.equal(x, y) for x, y in zip(rest_a, rest_c))


@SAMPLERS.register("test-checked-multi-attempt")
class CheckedMultiAttempt(MultiAttempt):
    """multi-attempt that checks, around every selection, that the loop's model (weights, BatchNorm
    buffers, mode) and the global RNG come out exactly as they went in."""

    model: torch.nn.Module | None = None
    checked = 0

    class Settings(Settings):
        attempts: int = 4

    def next_batch(self, step_in_epoch, scorer):
        m = type(self).model
        before = {k: v.clone() for k, v in m.state_dict().items()}
        rng = torch.get_rng_state()
        out = super().next_batch(step_in_epoch, scorer)
        after = m.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert torch.equal(rng, torch.get_rng_state()) and m.training
        type(self).checked += 1
        return out


def test_selection_leaves_weights_bn_buffers_and_rng_untouched(monkeypatch):
    real = trainwise.train.build_model

    def keep(*a, **kw):
        CheckedMultiAttempt.model = real(*a, **kw)
        return CheckedMultiAttempt.model

    monkeypatch.setattr(trainwise.train, "build_model", keep)
    cfg = TrialConfig(**trial_dict(sampler="test-checked-multi-attempt", model={"name": "cnn", "width": 4},
                                   train={"epochs": 1, "batch_size": 32, "threads": 1}))
    r = train(cfg, progress=False)
    assert CheckedMultiAttempt.checked == r["steps"] == 8
    assert any("running_mean" in k for k in CheckedMultiAttempt.model.state_dict())  # BN buffers were checked
    # 7 scored steps of 4 x 32 candidates, then the last batch unscored; every step trains 32
    assert r["samples_forwarded"] == 7 * 4 * 32 + 8 * 32 and r["samples_backpropagated"] == 8 * 32
