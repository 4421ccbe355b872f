import pytest

from trainwise.errors import ConfigError
from trainwise.study.config import StudyConfig, TrialConfig, load_config, parse_config


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


# ---------------------------------------------------------------- loading: encodings, duplicate keys, --set

TINY = ("dataset: {name: synthetic, synthetic: {n_train: 64, n_test: 32, size: 8}}\n"
        "model: {name: linear}\ntrain: {epochs: 1, batch_size: 16}\n")


def write(tmp_path, content: str | bytes):
    path = tmp_path / "c.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def load_error(tmp_path, content, overrides=(), model=StudyConfig) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, content), model, overrides)
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_duplicate_keys_are_errors_naming_key_and_lines(tmp_path):
    msg = load_error(tmp_path, TINY.replace("model: {name: linear}", "model: {name: linear}\nmodel: {name: mlp}"))
    assert "duplicate key 'model' at line 3 (first given at line 2); keep one of them" in msg
    assert "duplicate key 'lr'" in load_error(tmp_path, TINY + "optimizer: {lr: 0.1, lr: 0.2}\n")
    assert "duplicate key 'epochs'" in load_error(tmp_path, "train:\n  epochs: 1\n  epochs: 2\n")


def test_merge_keys_may_repeat_a_merged_key(tmp_path):
    cfg = load_config(write(tmp_path, TINY.replace("train: {epochs: 1, batch_size: 16}",
                                                   "train: {<<: {epochs: 3, batch_size: 8}, epochs: 1}")), StudyConfig)
    assert (cfg.train.epochs, cfg.train.batch_size) == (1, 8)


@pytest.mark.parametrize("content, why", [
    (TINY.encode("utf-16"), "invalid start byte"),            # UTF-16 with its byte-order mark
    (TINY.encode("utf-16-le"), "a NUL byte at offset 1"),     # without one: ASCII with NULs
    (TINY.encode().replace(b"linear", b"lin\0ear"), "a NUL byte"),
    (bytes(range(128, 256)), "invalid start byte"),
])
def test_binary_and_utf16_files_are_one_line(tmp_path, content, why):
    msg = load_error(tmp_path, content)
    assert "is not UTF-8 text" in msg and why in msg and "save the config as UTF-8 YAML" in msg


def test_utf8_bom_and_crlf_load(tmp_path):
    cfg = load_config(write(tmp_path, b"\xef\xbb\xbf" + TINY.replace("\n", "\r\n").encode()), StudyConfig)
    assert cfg.model.name == "linear"


@pytest.mark.parametrize("content, expected", [
    ("", "is empty; write a YAML mapping"),
    ("- a\n- b\n", "holds a value of type list at the top level"),
    ("seeds: " + "[" * 5000 + "]" * 5000, "cannot read the YAML (RecursionError"),
    ("seed: " + "9" * 5000, "cannot read the YAML (ValueError"),
    ("name: !!python/object/apply:os.system [true]", "YAML syntax error at line 1"),
    ("1: 2\n", "Keys should be strings"),
    ("a: 1\n" + "#" * 1_000_001, "too large for a config"),
])
def test_unreadable_yaml_is_one_line(tmp_path, content, expected):
    assert expected in load_error(tmp_path, content)


def test_set_overrides_nested_keys_and_list_items(tmp_path):
    path = write(tmp_path, TINY + "regimens: [{name: a}, {name: b}]\n")
    cfg = load_config(path, StudyConfig, ["train.epochs=3", "optimizer.lr=0.05", "train.drop_last=false",
                                          "seeds=[1, 2]", "regimens.1.augment=[crop-flip]",
                                          "model.name=cnn", "model.width=8", "robustness.eps=[0.1]"])
    assert (cfg.train.epochs, cfg.optimizer.lr, cfg.train.drop_last, cfg.seeds) == (3, 0.05, False, [1, 2])
    assert cfg.regimens[1].augment[0]["name"] == "crop-flip" and cfg.model.settings == {"width": 8}
    assert cfg.robustness.eps == [0.1]  # a missing mapping is created
    assert load_config(path, StudyConfig).train.epochs == 1  # the file is not touched
    assert load_config(write(tmp_path, ""), StudyConfig, ["name=x"]).name == "x"  # an empty file


@pytest.mark.parametrize("override, expected", [
    ("train.epochs", "expected key=value with a dotted key"),
    ("=3", "expected key=value"),
    ("train..epochs=3", "expected key=value"),
    ("train.epochs=[1", "--set 'train.epochs=[1': YAML syntax error"),
    ("regimens.5.name=x", "regimens is a list of 2; index it with 0 to 1"),
    ("regimens.a.name=x", "regimens is a list of 2"),
    ("train.epochs.x=1", "train.epochs is a int, not a mapping"),
])
def test_malformed_overrides_are_one_line_naming_them(tmp_path, override, expected):
    assert expected in load_error(tmp_path, TINY + "regimens: [{name: a}, {name: b}]\n", [override])


@pytest.mark.parametrize("override, expected", [
    ("train.epochs=0", "with --set: 'train.epochs': Input should be greater than 0"),
    ("train.epochs=abc", "'train.epochs': Input should be a valid integer"),
    ("model.name=cnn model.width=abc", "model 'cnn' setting 'width': Input should be a valid integer"),
    ("train.bogus=1", "unknown key 'train.bogus'"),
    ("regimens=[]", "'regimens': an empty list"),
])
def test_overrides_are_validated_like_the_yaml(tmp_path, override, expected):
    assert expected in load_error(tmp_path, TINY, override.split())


# ---------------------------------------------------------------- names

@pytest.mark.parametrize("name", ["", "a/b", "a\\b", "../up", "..", ".hidden", "x" * 65, "nul\0", "tab\tx",
                                  "new\nline"])
def test_bad_study_names(name):
    with pytest.raises(ConfigError, match="'name': name .* must be 1 to 64 printable characters"):
        parse_config({"name": name}, StudyConfig)


def test_good_names():
    assert parse_config({"name": "étude-α_2024 v1"}, StudyConfig).name == "étude-α_2024 v1"
    assert parse_config({"name": "n" * 64}, StudyConfig).name == "n" * 64
    # a regimen name labels report rows: '/' is allowed (as in the default labels), control characters are not
    cfg = parse_config({"regimens": [{"name": "importance-always/none"}]}, StudyConfig)
    assert cfg.trials()[0].regimen == "importance-always/none"
    for bad, msg in [("", "non-empty and printable"), ("a\x07", "non-empty and printable"),
                     ("r" * 65, "at most 64 characters")]:
        with pytest.raises(ConfigError, match=msg):
            parse_config({"regimens": [{"name": bad}]}, StudyConfig)


def test_multisplit_regimen_needs_a_directory_name():
    with pytest.raises(ConfigError, match="multisplit regimen 'uniform.*needs a 'name'"):
        parse_config({"regimens": [{"multisplit": {"k": 2}}]}, StudyConfig)
    assert parse_config({"regimens": [{"name": "ms", "multisplit": {"k": 2}}]}, StudyConfig)


# ---------------------------------------------------------------- bounds and types

@pytest.mark.parametrize("data, expected", [
    ({"regimens": []}, "'regimens': an empty list"),
    ({"seeds": []}, "'seeds': an empty list"),
    ({"budgets": []}, "'budgets': an empty list"),
    ({"samplers": []}, "'samplers': an empty list"),
    ({"seeds": [1, 1]}, "'seeds': [1] appear(s) more than once"),
    ({"seeds": [-1]}, "'seeds.0': Input should be greater than or equal to 0"),
    ({"seeds": [2**40]}, "'seeds.0': Input should be less than 4294967296"),
    ({"budgets": [float("nan")]}, "'budgets.0': Input should be a finite number"),
    ({"train": {"tta_sum": 10**9}}, "'train.tta_sum': Input should be less than or equal to 1000"),
    ({"train": {"epochs": 10**20}}, "'train.epochs': Input should be less than or equal to 100000"),
    ({"train": {"device": "cudax"}}, "unknown device 'cudax'"),
    ({"optimizer": {"lr": float("inf")}}, "'optimizer.lr': Input should be a finite number"),
    ({"optimizer": {"nesterov": True, "momentum": 0}}, "nesterov needs name: sgd and momentum > 0"),
    ({"schedule": {"milestones": [0.5, 2]}}, "'schedule.milestones.1': Input should be less than or equal to 1"),
    ({"model": {"name": "cnn", "width": "abc"}}, "model 'cnn' setting 'width': Input should be a valid integer"),
    ({"model": {"name": "cnn", "width": 32.0}}, "setting 'width': Input should be a valid integer, got 32.0"),
    ({"model": {"name": "mlp", "depth": 1000}}, "setting 'depth': Input should be less than or equal to 32"),
    ({"augments": [[{"name": "crop-flip", "pad": -1}]]}, "setting 'pad': Input should be greater than or equal to 0"),
    ({"augments": [[{"name": "standard", "pad": 4}]], "dataset": {"name": "synthetic", "synthetic": {"size": 4}}},
     "pad 4 must be below the image size 4 of dataset synthetic"),
    ({"augments": [[{"name": "mixup", "alpha": float("nan")}]]}, "setting 'alpha': Input should be a finite number"),
    ({"samplers": [{"name": "selective-backprop", "history": 10**12}]}, "setting 'history': Input should be less"),
    ({"samplers": [{"name": ["uniform"]}]}, "a sampler is a name or a mapping with a 'name' key"),
    ({"robustness": {"eps": [0.1], "steps": 10**8}}, "'robustness.steps': Input should be less than or equal"),
    ({"dataset": {"name": "synthetic", "synthetic": {"n_train": 10**7, "size": 64}}}, "synthetic data of 164 GB"),
    ({"regimens": [{"name": "a", "multisplit": {"k": 1000}}]}, "multisplit k: Input should be less than or equal"),
    ({"seeds": list(range(200)), "budgets": [0.1 * i for i in range(1, 11)], "samplers": ["uniform", "p-sgd"] * 1,
      "augments": [[], ["crop-flip"], ["mixup"]]}, "more than 10000 trials"),
])
def test_bounds(data, expected):
    with pytest.raises(ConfigError) as e:
        parse_config(data, StudyConfig)
    assert expected in str(e.value)


def test_regimen_unknown_key_lists_the_allowed_keys():
    with pytest.raises(ConfigError, match="unknown key 'regimens.0.epochs'; allowed here: name, sampler, augment"):
        parse_config({"regimens": [{"epochs": 3}]}, StudyConfig)


def test_multisplit_bounds():
    from trainwise.multisplit import MultiSplitConfig

    for data, expected in [({"name": "../x"}, "must be 1 to 64 printable"), ({"seeds": [0, 0]}, "seeds must be unique"),
                           ({"arms": [{"name": "a\tb", "k": 1, "transfer": "none"}]}, "plain directory name")]:
        with pytest.raises(ConfigError, match=expected):
            parse_config(data, MultiSplitConfig)
