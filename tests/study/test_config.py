import pytest

from trainwise.errors import ConfigError
from trainwise.study.config import StudyConfig, TrialConfig, parse_config


def test_grid_expands_regimens_budgets_seeds():
    cfg = StudyConfig(samplers=["uniform"], augments=[[], {"name": "crop-flip", "pad": 1}],
                      budgets=[0.3, 1.0], seeds=[0, 1, 2])
    trials = cfg.trials()
    assert len(trials) == 2 * 2 * 3
    assert {t.regimen for t in trials} == {"uniform/none", "uniform/crop-flip"}
    assert len({t.config_hash() for t in trials}) == len(trials)


def test_settings_are_validated_and_defaults_filled():
    t = TrialConfig(augment={"name": "crop-flip"})
    assert t.augment == [{"name": "crop-flip", "pad": 2, "flip": True}]
    with pytest.raises(ConfigError, match="allowed: pad, flip"):
        parse_config({"augment": {"name": "crop-flip", "size": 3}}, TrialConfig)
    with pytest.raises(ConfigError, match="'augment'.*should be a valid integer"):
        parse_config({"augment": {"name": "crop-flip", "pad": "x"}}, TrialConfig)


def test_hash_is_stable_and_sensitive():
    a, b = TrialConfig(seed=1), TrialConfig(seed=1)
    assert a.config_hash() == b.config_hash()
    assert a.config_hash() != TrialConfig(seed=2).config_hash()
    assert TrialConfig(**a.model_dump(mode="json")).config_hash() == a.config_hash()


def test_regimens_and_grid_are_exclusive():
    with pytest.raises(ConfigError, match="either 'regimens'"):
        parse_config({"samplers": ["uniform"], "regimens": [{"sampler": "uniform"}]}, StudyConfig)


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        parse_config(["a"], StudyConfig)
