import torch

from helpers import trial_dict
from trainwise.budget import Budget
from trainwise.sampling import SAMPLERS, SamplerContext
from trainwise.sampling.selective_backprop import percentile_rank
from trainwise.study.config import TrialConfig
from trainwise.train import train


def make(n=1000, batch=16, seed=0, **kw):
    ctx = SamplerContext(Budget(3, batch, n, 1.0), seed, torch.zeros(n, dtype=torch.long), torch.device("cpu"))
    return SAMPLERS.build({"name": "selective-backprop", **kw}, ctx)


class UniformLosses:
    """A scorer whose losses are i.i.d. U(0, 1): percentiles are uniform too. Counts forwards."""

    def __init__(self, seed=1):
        self.gen, self.forwarded = torch.Generator().manual_seed(seed), 0

    def __call__(self, idx):
        self.forwarded += len(idx)
        return torch.rand(len(idx), generator=self.gen), torch.zeros(len(idx))


def test_percentile_rank():
    hist = torch.arange(100, dtype=torch.float32)
    assert torch.allclose(percentile_rank(hist, torch.tensor([0.0, 49.0, 99.0])),
                          torch.tensor([0.01, 0.5, 1.0], dtype=torch.float64))


def test_keep_probability_is_percentile_to_the_beta():
    s = make(beta=3.0, history=200)
    s.keep_probability(torch.arange(199, dtype=torch.float32))  # history 0..198
    p = s.keep_probability(torch.tensor([99.5]))  # 0..99 and itself: rank 101/200
    assert torch.allclose(p, torch.tensor([(101 / 200) ** 3], dtype=torch.float64))


def test_kept_fraction_matches_the_percentile_rule():
    # with uniform percentiles, E[P(keep)] = E[U^beta] = 1/(beta + 1)
    for beta in (1.0, 3.0):
        s, scorer = make(beta=beta, history=1024, prime_samples=0), UniformLosses()
        batches = [s.next_batch(i, scorer).idx for i in range(300)]
        assert all(len(b) == 16 for b in batches)  # backward batches of exactly B
        kept = 300 * 16 + len(s.pending)
        frac = kept / scorer.forwarded
        assert abs(frac - 1 / (beta + 1)) < 0.02, (beta, frac)


def test_kept_losses_follow_the_percentile_rule():
    # losses U(0,1) fixed per sample; kept ones have density ∝ u^beta, so mean (beta+1)/(beta+2)
    s = make(n=20000, beta=2.0, history=512, prime_samples=0)
    losses = torch.rand(20000, generator=torch.Generator().manual_seed(3))
    kept = torch.cat([s.next_batch(i, lambda idx: (losses[idx], losses[idx])).idx for i in range(150)])
    assert len(set(kept.tolist())) == len(kept)  # within one pass of the stream: no repeats
    assert abs(float(losses[kept].mean()) - 0.75) < 0.02


def test_priming_trains_unselected_without_scoring_then_selects():
    s, scorer = make(n=1000, batch=16, prime_samples=64), UniformLosses()
    primed = torch.cat([s.next_batch(i, scorer).idx for i in range(4)])
    assert scorer.forwarded == 0 and s.hist_n == 0  # no scoring forward, no history while priming
    assert len(set(primed.tolist())) == 64  # plain batches from the uniform stream
    s.next_batch(4, scorer)
    assert scorer.forwarded >= 16 and s.hist_n == scorer.forwarded  # selection from the 65th sample on
    default = make(n=1000, batch=16)  # one budget epoch: floor(1000 / 16) = 62 batches of 16
    assert default.prime == 62 * 16


def test_forwards_in_a_run_count_priming_and_every_scoring_pass(tmp_path):
    # 256 samples, batch 32, 2 epochs: the first epoch (8 steps) primes, the second selects
    r = train(TrialConfig(**trial_dict(sampler="selective-backprop")), tmp_path / "a", progress=False)
    sd = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["sampler"]
    assert r["steps"] == 16 and r["samples_backpropagated"] == 16 * 32 and sd["primed"] == 8 * 32
    scored = sd["hist_n"]  # every scored candidate's loss joined the history
    assert r["samples_forwarded"] == r["samples_backpropagated"] + scored
    assert scored > 3 * 8 * 32  # ~(beta + 1) = 4 candidates per kept sample (more while losses fall)
    unprimed = train(TrialConfig(**trial_dict(sampler={"name": "selective-backprop", "prime_samples": 0})),
                     progress=False)
    assert unprimed["samples_forwarded"] > 4.4 * unprimed["samples_backpropagated"]  # ~5x from step 0


def test_state_round_trip_mid_stream():
    a, sc = make(seed=4), UniformLosses(5)
    for i in range(7):
        a.next_batch(i, sc)
    sd = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in a.state_dict().items()}
    g = sc.gen.get_state()
    ref = [a.next_batch(i, sc).idx for i in range(10)]
    b = make(seed=123)
    b.load_state_dict(sd)
    sc.gen.set_state(g)
    assert all(torch.equal(x, b.next_batch(i, sc).idx) for i, x in enumerate(ref))
