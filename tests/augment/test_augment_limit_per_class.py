"""``--limit-per-class N`` on ``train`` and ``study`` overrides ``dataset.limit_per_class``."""

from __future__ import annotations

import json

import yaml

from trainwise.cli import build_parser, main, with_limit
from trainwise.study.config import StudyConfig


def test_train_limit_per_class_sets_the_training_subset(tmp_path, capsys):
    cfg = dict(dataset={"name": "synthetic", "synthetic": {"n_train": 400, "n_test": 50, "size": 8,
                                                           "num_classes": 4}},
               model={"name": "linear"}, train={"epochs": 1, "batch_size": 10})
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--out", str(tmp_path / "r"), "--no-progress", "--limit-per-class", "5"]) == 0
    r = json.loads((tmp_path / "r" / "result.json").read_text())
    assert r["samples_forwarded"] == 4 * 5  # 4 classes x 5 samples, one epoch


def test_study_override_reaches_every_trial_and_bad_values_are_rejected(capsys):
    cfg = StudyConfig(dataset={"name": "digits", "limit_per_class": 50}, seeds=[0, 1])
    assert all(t.dataset.limit_per_class == 7 for t in with_limit(cfg, 7).trials())
    assert with_limit(cfg, None) is cfg
    args = build_parser().parse_args(["study", "x.yaml", "--limit-per-class", "100"])
    assert args.limit_per_class == 100
    try:
        build_parser().parse_args(["study", "x.yaml", "--limit-per-class", "0"])
        raise AssertionError("0 must be rejected")
    except SystemExit as e:
        assert e.code == 2
    assert "positive integer" in capsys.readouterr().err
