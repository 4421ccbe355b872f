"""Multi-split building blocks: the acceptance rules, parameter averaging, the K splits, and a
worker adopting an offer only when it improves its own validation score."""

from __future__ import annotations

import torch

from trainwise.multisplit.run import split_seed, trial_dict
from trainwise.multisplit.config import MultiSplitConfig
from trainwise.multisplit.transfer import average, better, choose, pack, unpack
from trainwise.multisplit.worker import SplitWorker, split_data
from trainwise.train import CHECKPOINT

DATA = {"name": "synthetic", "synthetic": {"n_train": 400, "n_test": 100, "size": 8, "noise": 1.0}}


def test_offer_is_adopted_only_when_it_beats_own_score():
    own = (0.80, 0.50)
    assert choose(own, [(0.79, 0.1), (0.80, 0.50)]) is None  # worse, and equal: both rejected
    assert choose(own, [(0.79, 0.1), (0.80, 0.49), (0.81, 0.9)]) == 2  # accuracy first
    assert choose(own, [(0.80, 0.49), (0.80, 0.45)]) == 1  # then lower loss
    assert choose(own, [(0.85, 0.3), (0.85, 0.3)]) == 0  # first of equals
    assert choose(own, []) is None
    assert better((0.5, 1.0), (0.4, 0.1)) and not better((0.5, 1.0), (0.5, 1.0))


def test_soft_average_lerps_floats_and_keeps_integer_buffers():
    own = {"w": torch.zeros(3), "n": torch.tensor(5)}
    offer = {"w": torch.ones(3) * 4, "n": torch.tensor(9)}
    avg = average(own, offer, 0.25)
    assert torch.equal(avg["w"], torch.ones(3)) and avg["n"].item() == 5
    assert torch.equal(average(own, offer, 1.0)["w"], offer["w"])
    back = unpack(pack(offer))
    assert all(torch.equal(back[k], offer[k]) for k in offer)


def test_k_splits_partition_the_same_gross_set_differently():
    splits = [split_data(DATA, 0.25, split_seed(0, k)) for k in range(3)]
    gross = split_data(DATA, 0.25, 0)
    n = gross.n_train + len(gross.y_val)
    for s in splits:
        assert s.n_train + len(s.y_val) == n and len(s.y_val) == 100
        rows = torch.cat([s.x_train, s.x_val]).flatten(1)
        assert torch.unique(rows, dim=0).shape[0] == n  # train and val disjoint, together the gross set
        assert torch.bincount(s.y_val).tolist() == torch.bincount(splits[0].y_val).tolist()  # stratified
        assert torch.equal(s.x_test, gross.x_test)
    vals = [set(map(tuple, s.x_val.flatten(1).tolist())) for s in splits]
    assert vals[0] != vals[1] and vals[1] != vals[2]


def test_worker_adopts_a_better_offer_and_rejects_a_worse_one(tmp_path):
    cfg = MultiSplitConfig(dataset=DATA, model={"name": "mlp", "hidden": 32, "depth": 1},
                           train={"epochs": 4, "batch_size": 32}, arms=[{"name": "a", "k": 2, "transfer": "greedy"}])
    arm = cfg.arms[0]
    ws = [SplitWorker(trial_dict(cfg, arm, 0, k, 1), str(tmp_path / f"s{k}"), 0.2, split_seed(0, k), 1)
          for k in range(2)]
    total = ws[0].info()["total_steps"]
    trained = ws[0].advance(total)
    early = ws[1].advance(1)
    assert trained["val_acc"] > early["val_acc"]
    # the fully trained parameters are offered to the barely trained worker: adopted
    rec = ws[1].consider("greedy", 0.5, ws[0].params())
    assert rec[0]["adopted"] and rec[0]["offer_val_acc"] > rec[0]["own_val_acc"]
    assert unpack(ws[1].params()).keys() == unpack(ws[0].params()).keys()
    assert all(torch.equal(a, b) for a, b in zip(unpack(ws[1].params()).values(), unpack(ws[0].params()).values()))
    # a scrambled copy offered to the trained worker: rejected, its checkpoint untouched
    before = (tmp_path / "s0" / CHECKPOINT).read_bytes()
    bad = {k: (torch.randn_like(v) if v.is_floating_point() else v) for k, v in unpack(ws[0].params()).items()}
    rec = ws[0].consider("greedy", 0.5, pack(bad))
    assert not rec[0]["adopted"] and not rec[0]["improves"]
    assert (tmp_path / "s0" / CHECKPOINT).read_bytes() == before
    # the barely trained worker resumes training from the adopted parameters to its budget's end
    assert ws[1].advance(total)["step"] == total
