"""Robust evaluation: the gradient-masking sanity checks fire on the failures they target (and
stay silent on an honest model), and a trial with a ``robustness:`` section reports
``robust_acc@<eps>`` next to clean accuracy."""

from __future__ import annotations

import torch
from torch import nn

from trainwise.errors import ConfigError
from trainwise.robust.config import RobustnessConfig
from trainwise.robust.evaluate import robust_metrics, sanity_warnings
from trainwise.study.config import TrialConfig, parse_config
from trainwise.train import train


def test_sanity_checks_each_fire():
    ok = sanity_warnings(0.9, {0.01: 0.8, 0.1: 0.3}, {0.01: 0.85, 0.1: 0.4}, (0.5, 0.0))
    assert ok == []
    w = sanity_warnings(0.9, {0.01: 0.95, 0.1: 0.3}, None, None)
    assert len(w) == 1 and "exceeds clean" in w[0]
    w = sanity_warnings(0.9, {0.01: 0.5, 0.1: 0.7}, None, None)
    assert len(w) == 1 and "rises with eps" in w[0]
    w = sanity_warnings(0.9, {0.01: 0.8}, {0.01: 0.6}, None)
    assert len(w) == 1 and "weaker than FGSM" in w[0]
    w = sanity_warnings(0.9, {0.01: 0.8}, None, (0.5, 0.6))
    assert len(w) == 1 and "not near 0" in w[0]


class Quantized(nn.Module):
    """A classic gradient mask: the input is rounded before a linear layer, so ∂loss/∂x = 0."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(torch.round(x * 4) / 4)


def _data(n=200):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.25 + 0.5 * y.view(-1, 1, 1, 1).float() + 0.05 * torch.randn(n, 1, 4, 4, generator=g)
    return x.clamp(0, 1), y


def _linear():
    lin = nn.Linear(16, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([-torch.ones(16), torch.ones(16)]))
        lin.bias.copy_(torch.tensor([8.0, -8.0]))  # boundary at mean pixel 0.5: ℓ∞ distance ≈ 0.25
    return nn.Sequential(nn.Flatten(), lin)


def test_masked_model_is_flagged_and_honest_one_is_not():
    x, y = _data()
    cfg = RobustnessConfig(eps=[0.05, 0.2, 0.3], samples=None)
    honest = robust_metrics(_linear(), x, y, cfg)
    assert honest["robust_warnings"] == []
    assert honest["robust_acc@0.3"] < 0.05 and honest["robust_acc@0.05"] == 1.0 and honest["robust_clean_acc"] == 1.0
    masked = robust_metrics(Quantized(_linear()), x, y, cfg)
    assert any("not near 0" in w for w in masked["robust_warnings"])


def test_bad_robustness_config_is_one_line_naming_the_key():
    try:
        parse_config({"robustness": {"eps": [0.1, -0.2]}}, TrialConfig, "cfg.yaml")
    except ConfigError as e:
        msg = str(e)
    assert "robustness.eps" in msg and "\n" not in msg
    try:
        parse_config({"robustness": {"eps": [0.1], "norm": "l3"}}, TrialConfig, "cfg.yaml")
    except ConfigError as e:
        msg = str(e)
    assert "robustness.norm" in msg


def test_trial_reports_robust_accuracy(make_trial):
    cfg = TrialConfig(**make_trial(robustness={"eps": [0.02, 0.3], "samples": 64}))
    r = train(cfg, progress=False)
    assert {"robust_acc@0.02", "robust_acc@0.3", "robust_clean_acc", "robust_warnings"} <= set(r)
    assert r["robust_acc@0.3"] <= r["robust_acc@0.02"] <= r["robust_clean_acc"]
    assert "robust_acc@0.02" not in train(TrialConfig(**make_trial()), progress=False)


def test_stronger_attack_check():
    from trainwise.robust.evaluate import stronger_check_eps
    assert sanity_warnings(0.9, {0.1: 0.5}, stronger=(0.1, 0.5, 0.495)) == []
    w = sanity_warnings(0.9, {0.1: 0.5}, stronger=(0.1, 0.5, 0.45))
    assert len(w) == 1 and "stronger" in w[0]
    assert sanity_warnings(0.9, {0.1: 0.5}, stronger=(0.1, 0.5, 0.45), stronger_tolerance=0.1) == []
    # the ε whose accuracy is closest to clean/2, below the large ε; ties go to the larger ε
    assert stronger_check_eps(0.9, {0.01: 0.8, 0.05: 0.5, 0.1: 0.0}, 0.5) == 0.05
    assert stronger_check_eps(1.0, {0.01: 0.75, 0.05: 0.25}, 0.5) == 0.05
    assert stronger_check_eps(0.8, {0.6: 0.4}, 0.5) is None


def test_weak_attack_is_flagged_by_the_stronger_check():
    """BIM-10 with a tiny step cannot reach the boundary; 5x the steps can."""
    x, y = _data()
    cfg = RobustnessConfig(attack="bim", eps=[0.2, 0.3], step_fraction=0.05, samples=None)
    m = robust_metrics(_linear(), x, y, cfg)
    e = m["robust_stronger_eps"]
    assert e in (0.2, 0.3) and m["robust_stronger_acc"] < m[f"robust_acc@{e:g}"]
    assert any("stronger bim" in w for w in m["robust_warnings"])
    off = robust_metrics(_linear(), x, y, cfg.model_copy(update={"stronger_factor": 1}))
    assert "robust_stronger_acc" not in off and not any("stronger" in w for w in off["robust_warnings"])


def test_honest_model_passes_every_check_under_autoattack_lite():
    x, y = _data()
    cfg = RobustnessConfig(attack="autoattack-lite", eps=[0.05, 0.2, 0.3], steps=20, samples=None)
    m = robust_metrics(_linear(), x, y, cfg)
    assert m["robust_warnings"] == [] and m["robust_acc@0.05"] == 1.0 and m["robust_acc@0.3"] < 0.05
