import torch

from trainwise.sampling.weighted import IndexStream, sample_with_replacement, sample_without_replacement


def test_without_replacement_distinct_and_sequential_inclusion_probabilities():
    w = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0])
    gen = torch.Generator().manual_seed(0)
    counts, reps = torch.zeros(5), 8000
    for _ in range(reps):
        idx = sample_without_replacement(w, 2, gen)
        assert len(set(idx.tolist())) == 2
        counts[idx] += 1
    # exact inclusion probability of a 2-draw successive sample: w_i/W + sum_j w_j/W * w_i/(W - w_j)
    W = w.sum()
    p = torch.tensor([w[i] / W + sum(w[j] / W * w[i] / (W - w[j]) for j in range(5) if j != i) for i in range(5)])
    expected = p * reps
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 20  # ~4 dof (inclusion counts are correlated, so this is loose but not vacuous)


def test_without_replacement_zero_weights_only_fill_in():
    w = torch.tensor([0.0, 1.0, 0.0, 1.0])
    gen = torch.Generator().manual_seed(1)
    for _ in range(50):
        assert set(sample_without_replacement(w, 2, gen).tolist()) == {1, 3}
    assert sorted(sample_without_replacement(w, 3, gen).tolist())[1:] == [1, 3]


def test_with_replacement_frequencies_match_weights():
    w = torch.tensor([1.0, 0.0, 5.0, 2.0, 2.0])
    gen = torch.Generator().manual_seed(2)
    counts = torch.bincount(sample_with_replacement(w, 40000, gen), minlength=5).float()
    assert counts[1] == 0
    keep = w > 0
    expected = (w / w.sum() * 40000)[keep]
    chi2 = ((counts[keep] - expected) ** 2 / expected).sum().item()
    assert chi2 < 18.5  # 3 dof, p ~ 3e-4


def test_index_stream_is_successive_permutations_and_resumes():
    gen = torch.Generator().manual_seed(3)
    s = IndexStream(10, gen)
    first = torch.cat([s.take(4) for _ in range(5)])  # 20 = two full permutations
    assert sorted(first[:10].tolist()) == list(range(10)) and sorted(first[10:].tolist()) == list(range(10))
    sd, g = s.state_dict(), gen.get_state()
    a = s.take(7)
    gen.set_state(g)
    s2 = IndexStream(10, gen)
    s2.load_state_dict(sd)
    assert torch.equal(a, s2.take(7))
