"""Cascading Sum Augmentation: K-way sums with multi-label targets; K = 1 is the identity;
the cascade moves K0 -> ... -> 1 inside the budget, and resumes exactly after a kill."""

from __future__ import annotations

import json
import signal
import time

import pytest
import torch
import yaml

from trainwise.augment import TRANSFORMS, TransformContext
from trainwise.augment.cascade import cascade_ks, gradual_k, gradual_lr, gradual_segments, group_weights
from trainwise.augment.cascading_sum import cascading_sum, topk_hits
from trainwise.budget import Budget
from trainwise.data.loader import gather
from trainwise.errors import ConfigError
from trainwise.study.config import TrialConfig
from trainwise.train import train
from helpers import cli_process


def _painted(n=12, size=(1, 6, 6)):
    """Image i is the constant 2**i (so any sum of distinct images is recognisable); label i."""
    x = (2.0 ** torch.arange(n, dtype=torch.float64)).view(n, 1, 1, 1).expand(n, *size).contiguous()
    return gather(x, torch.arange(n), torch.arange(n), n)


def _build(spec, n=12, size=(1, 6, 6), total=100, has_val=False):
    ctx = TransformContext(n, size, Budget(1, n, n * total), torch.device("cpu"), has_val=has_val)
    return TRANSFORMS.build(spec, ctx)


def test_k1_is_the_identity():
    b = _painted()
    t = _build({"name": "cascading-sum", "k": 1})
    t.on_step(0, 100)
    out = t(b, torch.Generator().manual_seed(0))
    assert torch.equal(out.x, b.x) and torch.equal(out.y, b.y)
    x, y = cascading_sum(b.x, b.y, torch.ones(1), torch.arange(12)[None])
    assert torch.equal(x, b.x) and torch.equal(y, b.y)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_input_is_the_equal_weight_sum_and_target_weights_its_labels(k):
    t = _build({"name": "cascading-sum", "k": k})
    t.on_step(0, 100)
    out = t(_painted(), torch.Generator().manual_seed(k))
    for i in range(12):
        value = out.x[i, 0, 0, 0].item() * k  # sum of 2**source over the K sources
        counts = out.y[i] * k  # how many of the K sources carry each label (one label per image)
        assert torch.allclose(out.x[i], torch.full_like(out.x[i], value / k))
        assert torch.allclose(counts, counts.round()) and counts.sum().item() == pytest.approx(k)
        assert sum(2**j * counts[j].item() for j in range(12)) == pytest.approx(value)  # same sources
        assert i in counts.nonzero().flatten().tolist()  # group 0 is the sample itself
    assert torch.allclose(out.y.sum(1), torch.ones(12, dtype=out.y.dtype))
    assert torch.equal(out.idx, torch.arange(12))


def test_dirichlet_weights_sum_to_one_and_vary_per_input():
    t = _build({"name": "cascading-sum", "k": 4, "weights": "dirichlet", "smoothing": 0.1})
    t.on_step(0, 100)
    out = t(_painted(), torch.Generator().manual_seed(0))
    assert torch.allclose(out.y.sum(1), torch.ones(12, dtype=out.y.dtype))
    assert out.y.max(1).values.unique().numel() > 1


def test_differentiable_wrt_inputs():
    x = torch.rand(5, 1, 3, 3, dtype=torch.double, requires_grad=True)
    perms = torch.stack([torch.arange(5), torch.tensor([1, 2, 3, 4, 0]), torch.tensor([4, 3, 2, 1, 0])])
    w = torch.rand(5, 3, dtype=torch.double)
    y = torch.eye(5, dtype=torch.double)
    assert torch.autograd.gradcheck(lambda t: cascading_sum(t, y, w, perms)[0], (x,))


def test_seeded_determinism():
    t = _build({"name": "cascading-sum", "k": 4, "weights": "dirichlet"})
    t.on_step(0, 100)
    a, b = (t(_painted(), torch.Generator().manual_seed(3)) for _ in range(2))
    c = t(_painted(), torch.Generator().manual_seed(4))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.x, c.x)


def test_topk_accuracy_counts_top_k_predictions_among_the_k_labels():
    logits = torch.tensor([[5.0, 4.0, 0.0, 0.0], [5.0, 0.0, 0.0, 4.0]])
    labels = torch.tensor([[0, 0], [1, 3]])  # (K, N): input 0 has labels {0, 1}, input 1 {0, 3}
    assert topk_hits(logits, labels).tolist() == [1.0, 1.0]
    assert topk_hits(logits, torch.tensor([[2, 0], [1, 2]])).tolist() == [0.5, 0.5]


def test_gradual_k_falls_linearly_and_lr_restarts_with_gamma():
    total, k0, decay = 120, 4, 0.75
    ks = [gradual_k(s, total, k0, decay) for s in range(total)]
    assert ks[0] == 4 and ks[-1] == 1 and all(a >= b for a, b in zip(ks, ks[1:]))
    assert gradual_k(45, total, k0, decay) == pytest.approx(2.5)
    b = gradual_segments(total, k0, decay)
    assert b == [0, 30, 60, 90, 120]
    for j, start in enumerate(b[:-1]):  # each cycle starts at lr0 * gamma**j, decays towards 0
        assert gradual_lr(start, total, 0.1, k0, decay, 0.5) == pytest.approx(0.1 * 0.5**j)
        assert gradual_lr(b[j + 1] - 1, total, 0.1, k0, decay, 0.5) < 0.1 * 0.5**j * 0.02
        assert gradual_k(start, total, k0, decay) == pytest.approx(k0 - j)


def test_gradual_last_group_fades_to_zero_weight():
    t = _build({"name": "cascading-sum", "k": 3, "schedule": "gradual", "decay": 1.0}, total=100)
    t.on_step(25, 100)  # K_eff = 3 - 2 * 0.25 = 2.5: groups weighted 1, 1, 0.5 (normalised)
    out = t(_painted(), torch.Generator().manual_seed(0))
    assert group_weights(2.5).tolist() == [1.0, 1.0, 0.5] and group_weights(2.0).tolist() == [1.0, 1.0]
    fifths = out.y * 5  # weights 0.4, 0.4, 0.2: every target entry is a multiple of 1/5
    assert torch.allclose(fifths, fifths.round()) and ((out.y > 0).sum(1) <= 3).all()
    assert (out.y[torch.arange(12), torch.arange(12)] >= 0.4 - 1e-9).all()  # group 0: the sample itself
    assert torch.allclose(out.y.sum(1), torch.ones(12, dtype=out.y.dtype))


def test_plateau_cascade_needs_a_validation_split():
    with pytest.raises(ConfigError, match="val_fraction"):
        _build({"name": "cascading-sum", "schedule": "cascade"})
    _build({"name": "cascading-sum", "schedule": "cascade", "switch": "fractions"})
    with pytest.raises(ConfigError, match="fractions"):
        _build({"name": "cascading-sum", "k": 4, "schedule": "cascade", "fractions": [0.5]})


def test_cascade_switch_continues_from_the_best_weights_so_far():
    t = _build({"name": "cascading-sum", "k": 4, "schedule": "cascade", "patience": 1}, has_val=True)
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.fill_(1.0)
    t.on_eval({"step": 1, "val_acc": 0.9}, model)  # best so far: weight 1
    with torch.no_grad():
        model.weight.fill_(2.0)
    rec = {"step": 2, "val_acc": 0.5}
    t.on_eval(rec, model)  # no improvement for `patience` evals: halve K, restore the best
    assert rec["K"] == 4 and rec["K_next"] == 2 and t.k_eff == 2
    assert torch.equal(model.weight, torch.ones(2, 2))


def _cascade_cfg(**over):
    d = dict(dataset={"name": "synthetic", "synthetic": {"n_train": 400, "n_test": 100, "size": 8},
                      "val_fraction": 0.2},
             model={"name": "linear"}, optimizer={"lr": 0.1}, train={"epochs": 6, "batch_size": 32,
                                                                   "eval_every": 3},
             augment=[{"name": "cascading-sum", "k": 8, "schedule": "cascade", "patience": 2}],
             loss="bce", seed=0)
    d.update(over)
    return TrialConfig(**d)


def test_cascade_moves_k0_to_1_within_the_budget(tmp_path):
    r = train(_cascade_cfg(), tmp_path, progress=False)
    hist = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    ks = [h["K"] for h in hist]
    assert r["steps"] == r["total_steps"] == 60
    assert ks[0] == 8 and ks[-1] == 1 and all(a >= b for a, b in zip(ks, ks[1:]))
    assert [k for i, k in enumerate(ks) if i == 0 or k != ks[i - 1]] == cascade_ks(8) == [8, 4, 2, 1]
    # each stage ends at the latest at its deadline: 1/4, 2/4, 3/4 of the 60 budgeted steps
    first_k1 = min(h["step"] for h in hist if h["K"] == 1)
    assert first_k1 <= 45 + 3
    assert r["train_topk_acc"] == hist[-1]["train_topk_acc"] and "train_topk_acc" in hist[1]
    assert r["test_acc"] == hist[-1]["test_acc"] > 0.2  # K = 1 at the end: a clean classifier (chance 0.1)


def test_fraction_cascade_without_validation_and_tta_sum_metric():
    cfg = _cascade_cfg(dataset={"name": "synthetic", "synthetic": {"n_train": 400, "n_test": 100, "size": 8}},
                       augment=[{"name": "cascading-sum", "k": 4, "schedule": "cascade", "switch": "fractions",
                                 "fractions": [0.3, 0.6]}],
                       train={"epochs": 3, "batch_size": 32, "tta_sum": 4})
    r = train(cfg, progress=False)
    assert r["K"] == 1 and r["test_acc"] > 0.2 and r["test_acc_tta_sum"] > 0.2  # chance is 0.1
    assert r["test_acc_tta_sum"] != r["test_acc"]  # the sums change predictions: a separate metric




def test_cascade_resumes_exactly_after_sigkill(tmp_path):
    cfg = dict(dataset={"name": "synthetic", "synthetic": {"n_train": 640, "n_test": 64, "size": 8},
                        "val_fraction": 0.1},
               model={"name": "cnn", "width": 4}, optimizer={"lr": 0.05},
               train={"epochs": 20, "batch_size": 32, "eval_every": 6, "checkpoint_every": 3, "threads": 1},
               augment=[{"name": "cascading-sum", "k": 4, "schedule": "cascade", "patience": 2}],
               loss="bce", seed=1)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    train(TrialConfig(**cfg), ref, progress=False)  # the uninterrupted reference, in-process (1 thread)

    proc = cli_process(["train", str(path), "--out", str(killed), "--no-progress"])
    ck_path, deadline, stage = killed / "checkpoint.pt", time.time() + 120, 0
    while stage < 1 and time.time() < deadline and proc.poll() is None:  # kill after the first halving
        time.sleep(0.02)
        if ck_path.exists():
            try:
                stage = torch.load(ck_path, weights_only=True)["transform"]["0"]["stage"]
            except Exception:  # being replaced right now
                pass
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the kill must interrupt the run mid-way"
    ck = torch.load(ck_path, weights_only=True)
    assert 1 <= ck["transform"]["0"]["stage"] < 2 + 1 and "best_state" in ck["transform"]["0"]
    assert ck["state"]["step"] < 20 * 18
    assert cli_process(["train", str(path), "--out", str(killed), "--resume", "--no-progress"]).wait() == 0
    a = torch.load(ref / "model.pt", weights_only=True)
    b = torch.load(killed / "model.pt", weights_only=True)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ra, rb = (json.loads((d / "result.json").read_text()) for d in (ref, killed))
    assert ra["test_acc"] == rb["test_acc"] and ra["K"] == rb["K"] == 1


def test_split_grouping_sums_k_disjoint_groups_as_the_authors_code():
    t = _build({"name": "cascading-sum", "k": 4, "grouping": "split"})
    t.on_step(0, 100)
    b = _painted()  # 12 images, 2**i each: every sum of distinct images is a distinct integer
    out = t(b, torch.Generator().manual_seed(0))
    assert len(out) == 3
    used = [int(round(out.x[i, 0, 0, 0].item() * 4)) for i in range(3)]
    assert sum(used) == 2**12 - 1  # the three sums use each of the 12 images exactly once
    for i in range(3):
        assert out.y[i].nonzero().flatten().tolist() == [j for j in range(12) if used[i] >> j & 1]
        assert used[i] >> int(out.idx[i]) & 1 and out.labels[i] == out.idx[i]
    short = t(gather(b.x[:2], torch.arange(2), torch.arange(2), 12), torch.Generator().manual_seed(1))
    assert len(short) == 1 and torch.allclose(short.x, (b.x[0:1] + b.x[1:2]) / 2)  # last short batch
