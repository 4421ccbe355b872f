import math

import torch

from trainwise.budget import Budget
from trainwise.sampling import SAMPLERS, SamplerContext


def make(name="p-sgd", n=100, b=0.3, batch=8, seed=0, **kw):
    # drop_last off: these tests look at which samples an epoch plans, all of which are trained on
    ctx = SamplerContext(Budget(3, batch, n, b, drop_last=False), seed, torch.zeros(n, dtype=torch.long), torch.device("cpu"))
    return SAMPLERS.build({"name": name, **kw}, ctx)


def epoch(s, e):
    return torch.cat([s.next_batch(i, None).idx for i in range(s.begin_epoch(e))])


def feed(s, idx, p):
    s.feedback(torch.as_tensor(idx), torch.zeros(len(idx)), torch.as_tensor(p, dtype=torch.float32))


def test_without_replacement_within_an_epoch():
    s = make()
    feed(s, range(50), torch.linspace(0, 1, 50))
    for e in range(5):
        idx = epoch(s, e)
        assert len(idx) == 30 and len(set(idx.tolist())) == 30


def test_score_is_running_mean_of_error_and_unseen_get_the_maximum():
    s = make(n=6, b=1.0)
    feed(s, [0, 1, 2], [0.9, 0.5, 0.2])
    feed(s, [0], [0.5])  # sample 0: mean p 0.7 -> score 0.3
    sc = s.scores()
    assert torch.allclose(sc[:3], torch.tensor([0.3, 0.5, 0.8], dtype=torch.float64))
    assert torch.all(sc[3:] == sc[:3].max()) and math.isclose(sc[3], 0.8, rel_tol=1e-6)  # unseen: maximum
    assert torch.all(make(n=6, b=1.0).scores() == 1.0)  # nothing seen yet: all equal


def test_frequencies_follow_the_smoothed_scores():
    # one draw per epoch (b*N = 1): the chosen index is distributed exactly as score + mean(score)
    n = 10
    s = make(n=n, b=0.1, batch=1)
    feed(s, range(8), torch.linspace(0.05, 0.95, 8))  # samples 8, 9 unseen
    sc = s.scores()
    p = (sc + sc.mean()) / (sc + sc.mean()).sum()
    reps = 5000
    counts = torch.bincount(torch.cat([epoch(s, e) for e in range(reps)]), minlength=n).double()
    chi2 = ((counts - reps * p) ** 2 / (reps * p)).sum().item()
    assert chi2 < 33  # 9 dof, p ~ 1e-4
    assert p[8] == p[9] == p.max() and counts[8] > counts[7] and counts[9] > counts[7]  # unseen: hardest


def test_c_sgd_scores_prediction_variance_and_warms_up_uniformly():
    s = make("c-sgd", n=5, b=1.0)
    feed(s, [0, 1, 2, 3], [0.5, 0.9, 0.1, 1.0])
    assert torch.allclose(s.scores()[:4], torch.tensor([0.25, 0.09, 0.09, 0.0], dtype=torch.float64))
    assert s.scores()[4] == s.scores()[:4].max()  # unseen: maximum
    c, u = make("c-sgd", warmup_epochs=1, seed=5), make("uniform", seed=5)
    feed(c, range(100), torch.rand(100))
    assert torch.equal(epoch(c, 0), epoch(u, 0))  # warm-up epoch: the uniform draw
    assert not torch.equal(epoch(c, 1), epoch(u, 1))


def test_c_sgd_frequencies_follow_the_smoothed_scores():
    n = 8
    s = make("c-sgd", n=n, b=1 / 8, batch=1)
    feed(s, range(n), torch.tensor([0.5, 0.3, 0.1, 0.02, 0.6, 0.8, 0.95, 0.99]))
    sc = s.scores()
    p = (sc + sc.mean()) / (sc + sc.mean()).sum()
    reps = 5000
    counts = torch.bincount(torch.cat([epoch(s, e) for e in range(reps)]), minlength=n).double()
    chi2 = ((counts - reps * p) ** 2 / (reps * p)).sum().item()
    assert chi2 < 30  # 7 dof, p ~ 1e-4


def test_state_round_trip_mid_epoch():
    a = make(seed=7)
    feed(a, range(40), torch.rand(40, generator=torch.Generator().manual_seed(0)))
    steps = a.begin_epoch(0)
    a.next_batch(0, None)
    sd = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in a.state_dict().items()}
    rest = [a.next_batch(i, None).idx for i in range(1, steps)] + [epoch(a, 1)]
    b = make(seed=99)
    b.load_state_dict(sd)
    again = [b.next_batch(i, None).idx for i in range(1, steps)] + [epoch(b, 1)]
    assert all(torch.equal(x, y) for x, y in zip(rest, again))
    assert math.isclose(float(a.p_sum.sum()), float(b.p_sum.sum()))
