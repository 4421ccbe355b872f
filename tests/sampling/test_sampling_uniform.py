import torch

from trainwise.budget import Budget
from trainwise.sampling import SAMPLERS, SamplerContext


def make(n=100, b=0.3, batch=8, seed=0):
    ctx = SamplerContext(Budget(3, batch, n, b), seed, torch.zeros(n, dtype=torch.long), torch.device("cpu"))
    return SAMPLERS.build("uniform", ctx)


def epoch(s, e):
    steps = s.begin_epoch(e)
    return [s.next_batch(i, None).idx for i in range(steps)]


def test_uniform_visits_floor_bn_distinct_samples_per_epoch():
    s = make()
    batches = epoch(s, 0)
    idx = torch.cat(batches)
    assert len(idx) == 24 and len(set(idx.tolist())) == 24  # without replacement
    assert [len(b) for b in batches] == [8, 8, 8]  # floor(30 / 8) full batches: the partial one is dropped
    assert len(s.order) == 30  # an epoch draws floor(b * N) = 30 candidates
    assert not torch.equal(idx, torch.cat(epoch(s, 1)))


def test_uniform_frequencies_are_uniform():
    s = make(n=50, b=0.5, batch=5)
    counts = torch.zeros(50)
    for e in range(400):
        counts += torch.bincount(torch.cat(epoch(s, e)), minlength=50)
    expected = 400 * 25 / 50
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 90  # 49 dof: p ~ 5e-4


def test_uniform_state_round_trip_and_determinism():
    a, b = make(seed=4), make(seed=4)
    assert torch.equal(torch.cat(epoch(a, 0)), torch.cat(epoch(b, 0)))
    sd = a.state_dict()
    c = make(seed=99)
    c.load_state_dict(sd)
    assert torch.equal(torch.cat(epoch(a, 1)), torch.cat(epoch(c, 1)))
