"""Bad input: one clear line, exit code 2, no traceback without --debug, no earlier study's file changed."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import serve_directory, snapshot, trial_dict
from trainwise.cli import main

TINY_STUDY = dict(
    name="tiny",
    dataset={"name": "synthetic", "synthetic": {"n_train": 128, "n_test": 64, "size": 8}},
    model={"name": "linear"},
    train={"epochs": 1, "batch_size": 32},
    seeds=[0],
    budgets=[1.0],
)


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """An earlier, finished study whose files must survive every bad invocation untouched."""
    root = tmp_path_factory.mktemp("earlier")
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY_STUDY))
    assert main(["study", str(cfg), "--out", str(root / "study"), "--no-progress"]) == 0
    return root / "study"


def run_bad(capsys, study_dir, args, config: dict | str | None = None, tmp_path=None):
    before = snapshot(study_dir)
    if config is not None:
        path = tmp_path / "bad.yaml"
        path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
        args = [args[0], str(path), *args[1:]]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("trainwise: error: ")
    assert "Traceback" not in err
    assert snapshot(study_dir) == before
    return err


def study(**over):
    d = {**TINY_STUDY, **over}
    return d


def write_idx(path: Path, magic_type: int, dims: tuple[int, ...], payload: bytes):
    header = struct.pack(">BBBB", 0, 0, magic_type, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    with gzip.open(path, "wb") as f:
        f.write(header + payload)


def fashion_dir(tmp_path, images_magic=0x08, truncate=False) -> Path:
    d = tmp_path / "fm"
    d.mkdir()
    n = 4
    for split in ("train", "t10k"):
        img = bytes(n * 28 * 28)
        if truncate:
            img = img[:100]
        write_idx(d / f"{split}-images-idx3-ubyte.gz", images_magic, (n, 28, 28), img)
        write_idx(d / f"{split}-labels-idx1-ubyte.gz", 0x08, (n,), bytes(range(n)))
    return d


def fashion_study(data_dir, **dataset):
    return study(dataset={"name": "fashion-mnist", "data_dir": str(data_dir), **dataset})


def test_missing_dataset_directory(capsys, study_dir, tmp_path):
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)],
                  fashion_study(tmp_path / "nowhere"), tmp_path)
    assert "does not exist" in err


def test_idx_wrong_magic(capsys, study_dir, tmp_path):
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)],
                  fashion_study(fashion_dir(tmp_path, images_magic=0x0A)), tmp_path)
    assert "images-idx3-ubyte.gz" in err


def test_idx_truncated(capsys, study_dir, tmp_path):
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)],
                  fashion_study(fashion_dir(tmp_path, truncate=True)), tmp_path)
    assert "truncated" in err


def test_checksum_mismatch_on_download(capsys, study_dir, tmp_path, monkeypatch):
    from trainwise.data import fashion_mnist

    # valid IDX files, but not the official bytes: the download must be refused
    with serve_directory(fashion_dir(tmp_path)) as served:
        monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", [])
        monkeypatch.setenv("TRAINWISE_CACHE", str(tmp_path / "cache"))
        monkeypatch.delenv("TRAINWISE_DATA", raising=False)
        monkeypatch.setenv("TRAINWISE_FASHION_MNIST_URL", served.url)
        cfg = study(dataset={"name": "fashion-mnist", "download": True})
        err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], cfg, tmp_path)
    assert "checksum mismatch" in err
    assert not any((tmp_path / "cache" / "fashion-mnist").glob("*.gz"))


def test_yaml_syntax_error(capsys, study_dir, tmp_path):
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], "name: [unclosed\nseeds: 1\n", tmp_path)
    assert "YAML syntax error" in err and "line" in err


def test_unknown_key(capsys, study_dir, tmp_path):
    cfg = study(train={"epochs": 1, "batchsize": 32})
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], cfg, tmp_path)
    assert "unknown key 'train.batchsize'" in err and "batch_size" in err


@pytest.mark.parametrize("budget", [0, -0.5, 1.5])
def test_bad_budget(capsys, study_dir, tmp_path, budget):
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], study(budgets=[budget]), tmp_path)
    assert "budgets.0" in err and "(0, 1]" in err


def test_impossible_budget(capsys, study_dir, tmp_path):
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], study(budgets=[0.01]), tmp_path)
    assert "impossible budget" in err


def test_negative_lr(capsys, study_dir, tmp_path):
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], study(optimizer={"lr": -0.1}), tmp_path)
    assert "optimizer.lr" in err


@pytest.mark.parametrize("over,needle", [
    ({"model": {"name": "resnet1000"}}, "unknown model 'resnet1000'; allowed: "),
    ({"samplers": ["nope"]}, "unknown sampler 'nope'; allowed: "),
    ({"augments": ["nope"]}, "unknown augmentation 'nope'; allowed: "),
])
def test_unknown_names(capsys, study_dir, tmp_path, over, needle):
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], study(**over), tmp_path)
    assert needle in err


@pytest.fixture
def finished_run(tmp_path, capsys) -> Path:
    """The directory of a finished `trainwise train` run of ``trial_dict()``."""
    run, cfg = tmp_path / "run", tmp_path / "a.yaml"
    cfg.write_text(yaml.safe_dump(trial_dict()))
    assert main(["train", str(cfg), "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    return run


def test_checkpoint_from_another_config(capsys, finished_run, tmp_path):
    run = finished_run
    err = run_bad(capsys, run, ["train", "--out", str(run), "--resume"], trial_dict(seed=9), tmp_path)
    assert "another config" in err


def test_truncated_checkpoint(capsys, finished_run, tmp_path):
    run = finished_run
    ck = run / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[:1000])
    err = run_bad(capsys, run, ["train", "--out", str(run), "--resume"], trial_dict(), tmp_path)
    assert "corrupt or truncated" in err


def test_train_refuses_to_overwrite_a_previous_run(capsys, finished_run, tmp_path):
    run = finished_run
    err = run_bad(capsys, run, ["train", "--out", str(run)], trial_dict(), tmp_path)
    assert "--resume" in err


def test_study_directory_not_writable(capsys, study_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    err = run_bad(capsys, study_dir, ["study", "--out", str(blocker / "study")], study(), tmp_path)
    assert "not writable" in err


def test_real_process_exit_code_and_debug_traceback(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(study(optimizer={"lr": -1})))
    env = dict(os.environ)
    plain = subprocess.run([sys.executable, "-m", "trainwise.cli", "study", str(cfg), "--out", str(tmp_path / "s")],
                           capture_output=True, text=True, env=env)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert len(plain.stderr.strip().splitlines()) == 1
    debug = subprocess.run([sys.executable, "-m", "trainwise.cli", "study", str(cfg), "--debug"],
                           capture_output=True, text=True, env=env)
    assert "Traceback" in debug.stderr


def test_multisplit_arm_name_cannot_escape_out(capsys, study_dir, tmp_path):
    """Issue 9 item 1: an arm named ``../victim`` made run_arm rmtree a directory outside --out."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    cfg = {k: v for k, v in TINY_STUDY.items() if k not in ("budgets",)}
    cfg.update(budget=1.0, arms=[{"name": "../victim", "k": 1, "transfer": "none"}])
    err = run_bad(capsys, study_dir, ["multisplit", "--out", str(tmp_path / "out"), "--no-progress"], cfg, tmp_path)
    assert "arm name" in err and "rename the arm" in err
    assert (victim / "keep.txt").read_text() == "precious" and not (tmp_path / "out").exists()


def test_duplicate_regimen_names_are_refused(capsys, study_dir, tmp_path):
    """Issue 9 item 6: two regimens with one name were merged into one report row ("seeds 2")."""
    cfg = study(regimens=[{"name": "a", "sampler": "uniform"}, {"name": "a", "sampler": "p-sgd"}])
    err = run_bad(capsys, study_dir, ["study", "--out", str(tmp_path / "out"), "--no-progress"], cfg, tmp_path)
    assert "regimen names must be unique" in err and "'a'" in err


# ---------------------------------------------------------------- the user's own data (bad inputs)


def _image_tree(root: Path, sizes=None) -> Path:
    """train/ and test/ folders of 2 classes x 2 tiny PNGs (``sizes``: {relative path: (h, w)})."""
    import numpy as np
    from PIL import Image

    sizes = sizes or {}
    for split in ("train", "test"):
        for c in ("a", "b"):
            for i in range(2):
                rel = f"{split}/{c}/{i}.png"
                (root / split / c).mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full(sizes.get(rel, (8, 8)), 40 * i, dtype=np.uint8)).save(root / rel)
    return root


def _user(tmp_path, monkeypatch, **dataset):
    monkeypatch.setenv("TRAINWISE_CACHE", str(tmp_path / "cache"))
    return study(dataset=dataset)


def test_image_folder_non_image_file(capsys, study_dir, tmp_path, monkeypatch):
    root = _image_tree(tmp_path / "imgs")
    (root / "train" / "a" / "notes.txt").write_text("hello")
    cfg = _user(tmp_path, monkeypatch, name="image-folder", path=str(root))
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], cfg, tmp_path)
    assert "train/a/notes.txt is not an image" in err


def test_image_folder_sizes_differ_without_resize(capsys, study_dir, tmp_path, monkeypatch):
    root = _image_tree(tmp_path / "imgs", {"train/b/1.png": (10, 12)})
    cfg = _user(tmp_path, monkeypatch, name="image-folder", path=str(root))
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], cfg, tmp_path)
    assert "train/a/0.png is 8x8" in err and "train/b/1.png is 10x12" in err and "dataset.resize" in err


def test_image_folder_empty_class(capsys, study_dir, tmp_path, monkeypatch):
    root = _image_tree(tmp_path / "imgs")
    (root / "train" / "c").mkdir()
    cfg = _user(tmp_path, monkeypatch, name="image-folder", path=str(root))
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], cfg, tmp_path)
    assert "train/c/ holds no images" in err


def test_image_folder_unknown_test_class(capsys, study_dir, tmp_path, monkeypatch):
    root = _image_tree(tmp_path / "imgs")
    (root / "test" / "a").rename(root / "test" / "zebra")
    cfg = _user(tmp_path, monkeypatch, name="image-folder", path=str(root))
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], cfg, tmp_path)
    assert "test/zebra/" in err and "training" in err


def _csv(tmp_path, rows) -> Path:
    path = tmp_path / "table.csv"
    path.write_text("x1,x2,label\n" + "\n".join(rows) + "\n")
    return path


def test_csv_missing_label_column(capsys, study_dir, tmp_path, monkeypatch):
    path = _csv(tmp_path, [f"{i},{i},{i % 2}" for i in range(10)])
    cfg = _user(tmp_path, monkeypatch, name="csv", path=str(path), label_column="species", test_fraction=0.2)
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], cfg, tmp_path)
    assert "no column 'species'" in err and "'x1', 'x2', 'label'" in err


def test_csv_non_numeric_feature(capsys, study_dir, tmp_path, monkeypatch):
    path = _csv(tmp_path, ["1,2,0", "3,4,1", "5,six,0", "7,8,1"])
    cfg = _user(tmp_path, monkeypatch, name="csv", path=str(path), label_column="label", test_fraction=0.5)
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], cfg, tmp_path)
    assert "line 4" in err and "column 'x2'" in err and "'six' is not a number" in err


def _npz(tmp_path, **over) -> Path:
    import numpy as np

    arrays = dict(x_train=np.zeros((8, 1, 4, 4), np.float32), y_train=np.arange(8) % 2,
                  x_test=np.zeros((4, 1, 4, 4), np.float32), y_test=np.arange(4) % 2)
    arrays.update(over)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(tmp_path / "data.npz", **arrays)
    return tmp_path / "data.npz"


def test_npz_missing_key(capsys, study_dir, tmp_path, monkeypatch):
    cfg = _user(tmp_path, monkeypatch, name="arrays", path=str(_npz(tmp_path, y_test=None)))
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], cfg, tmp_path)
    assert "no 'y_test'" in err and "found: x_test, x_train, y_train" in err


@pytest.mark.parametrize("labels,needle", [
    ([0, 1, 0, 1, 0, 1, 0, -1], "not negative"),
    ([0, 1, 0, 1, 0, 1, 0, 0.5], "integer class indices"),
    ("test", "0..1"),
])
def test_npz_bad_labels(capsys, study_dir, tmp_path, monkeypatch, labels, needle):
    import numpy as np

    over = {"y_test": np.array([0, 1, 2, 0])} if labels == "test" else {"y_train": np.array(labels)}
    cfg = _user(tmp_path, monkeypatch, name="arrays", path=str(_npz(tmp_path, **over)))
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], cfg, tmp_path)
    assert needle in err


def test_npz_nan_in_features(capsys, study_dir, tmp_path, monkeypatch):
    import numpy as np

    x = np.zeros((8, 3), np.float32)
    x[5, 1] = np.nan
    cfg = _user(tmp_path, monkeypatch, name="arrays",
                path=str(_npz(tmp_path, x_train=x, x_test=np.zeros((4, 3), np.float32))))
    err = run_bad(capsys, study_dir, ["study", "--out", str(study_dir)], cfg, tmp_path)
    assert "sample 5 holds NaN" in err


USER_NET = '''
from torch import nn


def raises(input_shape, num_classes):
    raise ValueError("width must be even")


def seven(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(7))
'''


@pytest.mark.parametrize("name,needle", [
    ("missing_net.py:factory", "not found"),
    ("user_net.py:nope", "has no attribute 'nope'"),
    ("user_net.py:raises", "the factory raised ValueError: width must be even"),
    ("user_net.py:seven", "output shape (4, 7) but the dataset has 10 classes"),
])
def test_user_model_factory_missing_raising_or_wrong_shape(capsys, study_dir, tmp_path, monkeypatch, name, needle):
    """A factory that is missing, raises, or returns logits of the wrong shape (more cases in
    tests/models/test_user_models.py)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "user_net.py").write_text(USER_NET)
    cfg = study(dataset={"name": "synthetic", "synthetic": {"n_train": 128, "n_test": 64, "size": 8}},
                model={"name": name})
    err = run_bad(capsys, study_dir, ["study", "--out", str(tmp_path / "out")], cfg, tmp_path)
    assert needle in err
