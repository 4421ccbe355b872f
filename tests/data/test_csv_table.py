"""dataset.name: csv — a header, a label column, numeric features, a seeded stratified test split."""

from __future__ import annotations

from pathlib import Path

import torch

from trainwise.data import fingerprint, load_raw
from trainwise.study.config import DatasetConfig
from helpers import load_error


def table(path: Path, rows=None, header="a,b,kind,c") -> Path:
    if rows is None:
        rows = [f"{i},{i * 0.5},{['cat', 'dog', 'fox'][i % 3]},{-i}" for i in range(15)]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def cfg(path, **kw) -> DatasetConfig:
    return DatasetConfig(**{"name": "csv", "path": str(path), "label_column": "kind", "test_fraction": 0.2, **kw})


def test_round_trip(tmp_path):
    path = table(tmp_path / "t.csv")
    d = load_raw(cfg(path))
    assert d.x_train.dtype == torch.float32 and d.x_train.shape == (12, 3) and d.x_test.shape == (3, 3)
    assert d.classes == ["cat", "dog", "fox"] and d.num_classes == 3
    assert torch.bincount(d.y_test).tolist() == [1, 1, 1]
    for x, y in zip(torch.cat([d.x_train, d.x_test]), torch.cat([d.y_train, d.y_test])):
        i = int(x[0])
        assert x.tolist() == [i, i * 0.5, -i] and int(y) == i % 3  # each row keeps its label
    assert fingerprint(load_raw(cfg(path))) == fingerprint(d)
    assert fingerprint(load_raw(cfg(path, split_seed=1))) != fingerprint(d)
    text = path.read_text().replace("4,2.0,dog,-4", "4,2.5,dog,-4")
    assert fingerprint(load_raw(cfg(table(tmp_path / "u.csv", text.splitlines()[1:])))) != fingerprint(d)


def test_feature_columns_integer_labels_bom_and_blank_lines(tmp_path):
    rows = [f"{i},{i % 2 + 3},{i * 2}" for i in range(10)] + [""]
    path = tmp_path / "i.csv"
    path.write_text("\ufeffx, label ,y\n" + "\n".join(rows) + "\n", encoding="utf-8")
    d = load_raw(cfg(path, label_column="label", feature_columns=["y"], test_fraction=0.4))
    assert d.classes == ["3", "4"] and d.x_train.shape == (6, 1)
    assert set(d.y_train.tolist()) == {0, 1}


def test_errors(tmp_path):
    ok = table(tmp_path / "ok.csv")
    assert "does not exist" in load_error(cfg(tmp_path / "none.csv"))
    msg = load_error(cfg(ok, label_column="species"))
    assert "no column 'species'" in msg and "'a', 'b', 'kind', 'c'" in msg
    assert "feature column 'zz'" in load_error(cfg(ok, feature_columns=["a", "zz"]))
    assert "test_fraction" in load_error(DatasetConfig(name="csv", path=str(ok), label_column="kind"))
    bad = table(tmp_path / "nn.csv", ["1,2,cat,3", "4,abc,dog,6", "1,1,cat,1"])
    msg = load_error(cfg(bad))
    assert "line 3" in msg and "column 'b'" in msg and "'abc' is not a number" in msg
    assert "'' is not a number" in load_error(cfg(table(tmp_path / "empty.csv", ["1,,cat,3", "1,2,dog,3"])))
    msg = load_error(cfg(table(tmp_path / "nan.csv", ["1,2,cat,3", "1,nan,dog,3"])))
    assert "line 3" in msg and "not a finite number" in msg
    assert "inf" in load_error(cfg(table(tmp_path / "inf.csv", ["1,2,cat,3", "1,2,dog,-inf"])))
    assert "3 fields" in load_error(cfg(table(tmp_path / "short.csv", ["1,2,cat,3", "1,2,dog"])))
    assert "header but no rows" in load_error(cfg(table(tmp_path / "hdr.csv", [])))
    assert "one class" in load_error(cfg(table(tmp_path / "one.csv", ["1,2,cat,3", "1,2,cat,4"])))
    (tmp_path / "latin.csv").write_bytes("a,kind\n1,caf\xe9\n".encode("latin-1"))
    assert "not UTF-8" in load_error(cfg(tmp_path / "latin.csv"))
