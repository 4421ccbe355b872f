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
    cfg = study(loss="bce", dataset={**BASE["dataset"], "val_fraction": 0}, regimens=[{"name": "plain"}, {"name": "cascade", "augment": [
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


USER_NET = """
from torch import nn


def seven(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(7))


def no_head(input_shape, num_classes):
    return nn.Conv2d(input_shape[0], 2, 3)  # (batch, 2, 6, 6) feature maps, no classifier


class Boom(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.lin = nn.Linear(64, num_classes)

    def forward(self, x):
        raise KeyError("no such layer")


def no_parameters(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.AdaptiveAvgPool1d(num_classes))
"""


@pytest.mark.parametrize("factory,needle", [
    ("seven", r"model 'net.py:seven': output shape \(4, 7\) but the dataset has 10 classes: the factory must "
              r"return logits of shape \(batch, num_classes\)$"),
    ("no_head", r"model 'net.py:no_head': output shape \(4, 2, 6, 6\) but the dataset has 10 classes"),
    ("Boom", r"model 'net.py:Boom': the forward on a batch of shape \(4, 1, 8, 8\) raised KeyError: 'no such "
             r"layer'; fix the model$"),
    ("no_parameters", r"model 'net.py:no_parameters': building the optimizer on its parameters raised "
                      r"ValueError: optimizer got an empty parameter list; fix the model$"),
])
def test_a_user_model_that_cannot_step_names_the_model(tmp_path, monkeypatch, factory, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(USER_NET)
    cfg = study(model={"name": f"net.py:{factory}"})
    with pytest.raises(TrainwiseError, match=r"^regimen 'uniform/none': " + needle):
        pf.preflight(cfg.trials(), load_dataset(cfg.dataset))
