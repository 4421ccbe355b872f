"""The task seam (trainwise/tasks.py): classification is unchanged by it, and settings that do not
fit a task are one clear error.

``golden/classification_before_task_seam.json`` was written by the commit before the seam
(e4d530e) with the script ``golden_classification.py`` beside it: the trial ids of every example study's trials,
and the result rows of four short runs covering both losses, feedback samplers (importance,
InfoBatch), selective backprop, a mixer, a validation split and a target accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainwise.config import TrialConfig
from trainwise.config_load import load_config
from trainwise.errors import ConfigError
from trainwise.study.config import StudyConfig
from trainwise.train import train

GOLDEN = json.loads((Path(__file__).parent / "golden" / "classification_before_task_seam.json").read_text())
ROOT = Path(__file__).parents[1]


def test_example_studies_keep_their_trial_ids():
    for path, ids in GOLDEN["trial_ids"].items():
        cfg = load_config(ROOT / path, StudyConfig)
        assert [t.config_hash() for t in cfg.trials()] == ids, path


@pytest.mark.parametrize("name", sorted(GOLDEN["results"]))
def test_classification_runs_give_the_same_numbers_as_before_the_seam(name):
    want = GOLDEN["results"][name]
    cfg = TrialConfig(**want["config"])
    assert cfg.config_hash() == want["trial_id"]
    got = train(cfg, progress=False)
    got.pop("wall_time"), got.pop("cpu_time")
    if got.get("time_to_target") is not None:
        got["time_to_target"] = "reached"
    assert list(got) == list(want["result"])  # the same fields, in the same order
    for k, v in want["result"].items():
        assert got[k] == (pytest.approx(v, rel=1e-9, abs=1e-12) if isinstance(v, float) else v), k


def retrieval(**kw) -> dict:
    base = {"task": "retrieval", "dataset": {"name": "synthetic-paired"}, "model": {"name": "two-tower"},
            "loss": "max-of-hinges"}
    return {**base, **kw}


@pytest.mark.parametrize("settings, message", [
    (dict(task="classification", dataset={"name": "fashion-halves"}), "is paired .* set task: retrieval"),
    (dict(loss="max-of-hinges", model={"name": "mlp"}), "is a retrieval loss"),
    (dict(model={"name": "two-tower"}), "set task: retrieval"),
    (retrieval(loss="ce"), "trains with loss sum-of-hinges or max-of-hinges"),
    (retrieval(dataset={"name": "digits"}), "needs a paired dataset"),
    (retrieval(model={"name": "cnn"}), "is a classifier"),
    (retrieval(sampler="p-sgd"), "classification only; task retrieval runs with infobatch, uniform"),
    (retrieval(sampler="selective-backprop"), "classification only"),
    (retrieval(augment="mixup"), "augment is for classification"),
    (retrieval(target_accuracy=0.5), "target_accuracy is for classification"),
    (retrieval(loss={"name": "sum-of-hinges", "warmup_epochs": 1}), "warmup_epochs .* is for loss max-of-hinges"),
    (retrieval(loss={"name": "max-of-hinges", "margin": 0}), "margin 0: give a number in"),
    (retrieval(loss={"name": "max-of-hinges", "collapse": "maybe"}), "collapse 'maybe'"),
    (retrieval(loss={"name": "max-of-hinges", "alpha": 0.2}), r"unknown setting\(s\) \['alpha'\]"),
    (retrieval(multisplit={"k": 2}), "multisplit is for classification"),
])
def test_settings_that_do_not_fit_the_task_are_one_clear_error(settings, message):
    from trainwise.config_load import parse_config

    with pytest.raises(ConfigError, match=message):
        parse_config(settings, TrialConfig)


def test_a_hinge_loss_at_its_defaults_is_spelled_one_way():
    a = TrialConfig(**retrieval(loss={"name": "max-of-hinges", "margin": 0.2}))
    b = TrialConfig(**retrieval(loss="max-of-hinges"))
    assert a.loss == "max-of-hinges" and a.config_hash() == b.config_hash()
    c = TrialConfig(**retrieval(loss={"name": "max-of-hinges", "warmup_epochs": 1}))
    assert c.loss == {"name": "max-of-hinges", "margin": 0.2, "warmup_epochs": 1, "collapse": "warn"}


def test_a_study_refuses_a_regimen_that_does_not_fit_its_task():
    from trainwise.config_load import parse_config

    cfg = {**retrieval(), "regimens": [{"sampler": "uniform"}, {"sampler": "importance"}]}
    cfg.pop("multisplit", None)
    with pytest.raises(ConfigError, match="sampler 'importance' needs p\\(true class\\)"):
        parse_config(cfg, StudyConfig)


def test_multisplit_and_the_order_probe_refuse_paired_data():
    from trainwise.config_load import parse_config
    from trainwise.multisplit import MultiSplitConfig
    from trainwise.study.probe_order import ProbeConfig

    with pytest.raises(ConfigError, match="multisplit is for classification"):
        parse_config({"dataset": {"name": "fashion-halves"}}, MultiSplitConfig)
    with pytest.raises(ConfigError, match="the order probe trains classifiers"):
        parse_config({"dataset": {"name": "fashion-halves"}}, ProbeConfig)
