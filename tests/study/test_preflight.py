"""preflight: each distinct regimen is built and stepped once on real samples before any trial runs."""

from __future__ import annotations

import pytest
import torch

from trainwise.data import load_dataset
from trainwise.errors import TrainwiseError
from trainwise.study import preflight as pf
from trainwise.study.config import StudyConfig

BASE = dict(dataset={"name": "synthetic", "synthetic": {"n_train": 64, "n_test": 32, "size": 8}},
            model={"name": "cnn", "width": 4}, train={"epochs": 1, "batch_size": 16}, seeds=[0, 1],
            budgets=[0.5, 1.0])


def study(**over) -> StudyConfig:
    return StudyConfig(**{**BASE, **over})


def test_good_regimens_pass_and_leave_rng_and_data_alone(monkeypatch):
    cfg = study(regimens=[
        {"name": "plain"},
        {"name": "is", "sampler": {"name": "importance", "tau_th": 0.0, "score": "gradnorm-ub"},
         "augment": ["standard", "mixup"]},
        {"name": "sb", "sampler": "selective-backprop", "augment": ["cutmix", "ricap"]},
        {"name": "cs", "sampler": "infobatch", "loss": "bce",
         "augment": [{"name": "cascading-sum", "k": 8, "grouping": "split"}]},
    ])
    data = load_dataset(cfg.dataset)
    x = data.x_train.clone()
    calls = []
    monkeypatch.setattr(pf, "step_once", lambda t, *a, f=pf.step_once: calls.append(t.regimen) or f(t, *a))
    torch.manual_seed(123)
    state = torch.get_rng_state()
    pf.preflight(cfg.trials(), data)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(data.x_train, x)
    assert calls == ["plain", "is", "sb", "cs"]  # once per regimen, not per budget x seed


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_names_the_regimen():
    cfg = study(train={"device": "cuda"})
    with pytest.raises(TrainwiseError, match=r"^regimen 'uniform/none': device 'cuda' requested but CUDA is not "
                                             r"available; set train.device: cpu$"):
        pf.preflight(cfg.trials(), load_dataset(cfg.dataset))


def test_a_transform_that_cannot_be_built_names_the_regimen():
    cfg = study(loss="bce", regimens=[{"name": "plain"}, {"name": "cascade", "augment": [
        {"name": "cascading-sum", "k": 2, "schedule": "cascade", "switch": "plateau"}]}])
    with pytest.raises(TrainwiseError, match="^regimen 'cascade': cascading-sum schedule cascade with switch "
                                             "plateau needs a validation split"):
        pf.preflight(cfg.trials(), load_dataset(cfg.dataset))


def test_a_step_that_fails_is_one_line_with_the_exception_type():
    # BatchNorm on a 1x1 map of a single sample: every real step of this study would fail
    cfg = study(model={"name": "preact-resnet18", "width": 2}, train={"epochs": 1, "batch_size": 1})
    with pytest.raises(TrainwiseError) as e:
        pf.preflight(cfg.trials(), load_dataset(cfg.dataset))
    msg = str(e.value)
    assert msg.startswith("regimen 'uniform/none': ValueError: Expected more than 1 value per channel")
    assert msg.endswith("; fix its settings") and "\n" not in msg


def test_unexpected_exceptions_are_wrapped(monkeypatch):
    cfg = study()

    def broken(*a, **k):
        raise RuntimeError("shape mismatch\nsecond line")

    monkeypatch.setattr(pf, "build_model", broken)
    with pytest.raises(TrainwiseError, match=r"^regimen 'uniform/none': RuntimeError: shape mismatch; fix its "
                                             r"settings$"):
        pf.preflight(cfg.trials(), load_dataset(cfg.dataset))
