"""A CSV table of the user's (``dataset.name: csv``): one row per sample, a header row naming the
columns.

``label_column`` holds the class: integers or names, mapped to the sorted distinct values (class
names are the values as written: "3", "cat"). ``feature_columns`` (default: every other column)
must hold numbers (no empty cells, no NaN or infinity); they become float32 features (N, D),
standardised later by the model wrapper. The file holds one table, so ``test_fraction`` must hold
out a stratified, seeded (``split_seed``) test set. Read with the csv module (UTF-8, an optional
byte-order mark); blank lines are skipped.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from .arrays import make_data, stratified_split
from .base import TensorData
from .download import one_line


def _short(v: str) -> str:
    return repr(v if len(v) <= 40 else v[:37] + "...")


def _columns(header: list[str]) -> str:
    shown = ", ".join(repr(c) for c in header[:30])
    return shown + (f" and {len(header) - 30} more" if len(header) > 30 else "")


def load_csv(cfg) -> TensorData:
    path = Path(cfg.path).expanduser()
    if not path.exists():
        raise DataError(f"CSV file {path} does not exist; set dataset.path to a .csv file")
    if not path.is_file():
        raise DataError(f"dataset.path {path} is not a file; dataset 'csv' needs one .csv file")
    if cfg.test_fraction is None:
        raise DataError(f"{path} holds one table and no test set; set dataset.test_fraction (e.g. 0.2) to hold out "
                        "a stratified test set")
    label = cfg.label_column
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path} is empty; it needs a header row naming the columns, then one row per "
                                "sample")
            header = [h.strip() for h in header]
            twice = sorted({h for h in header if header.count(h) > 1})
            if twice:
                raise DataError(f"{path}: column {twice[0]!r} appears more than once in the header; give every "
                                "column its own name")
            if label not in header:
                raise DataError(f"{path} has no column {label!r} (columns: {_columns(header)}); set "
                                "dataset.label_column to the column holding the class")
            features = list(cfg.feature_columns) if cfg.feature_columns else [h for h in header if h != label]
            for c in features:
                if c not in header:
                    raise DataError(f"{path} has no feature column {c!r} (columns: {_columns(header)}); fix "
                                    "dataset.feature_columns")
            if label in features:
                raise DataError(f"label column {label!r} is also in dataset.feature_columns; remove it there")
            if not features:
                raise DataError(f"{path} has no column besides the label {label!r}; add feature columns")
            li, fi = header.index(label), [header.index(c) for c in features]
            labels, rows, lines = [], [], []
            for row in reader:
                if not row or all(not v.strip() for v in row):
                    continue
                if len(row) != len(header):
                    raise DataError(f"{path} line {reader.line_num} has {len(row)} fields but the header has "
                                    f"{len(header)}; give every row one value per column")
                y = row[li].strip()
                if not y:
                    raise DataError(f"{path} line {reader.line_num}: the label ({label!r}) is empty; give every "
                                    "row a class or remove the row")
                vals = []
                for c, j in zip(features, fi):
                    try:
                        v = float(row[j])
                    except ValueError:
                        raise DataError(f"{path} line {reader.line_num}, column {c!r}: {_short(row[j])} is not a "
                                        "number; features must be numeric (encode categories as numbers, or leave "
                                        "the column out of dataset.feature_columns)") from None
                    if not math.isfinite(v):
                        raise DataError(f"{path} line {reader.line_num}, column {c!r}: {_short(row[j].strip())} is "
                                        "not a finite number; fill or remove the missing value")
                    vals.append(v)
                labels.append(y)
                rows.append(vals)
                lines.append(reader.line_num)
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text ({one_line(e)}); save it as UTF-8 CSV") from None
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV ({one_line(e)}); fix the quoting") from None
    except OSError as e:
        raise DataError(f"cannot read {path} ({one_line(e.strerror or e)}); check the file") from None
    if not rows:
        raise DataError(f"{path} has a header but no rows; add one row per sample")
    x = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(x.astype(np.float32)).all():  # finite as float64, too large for float32
        i, j = np.argwhere(~np.isfinite(x.astype(np.float32)))[0]
        raise DataError(f"{path} line {lines[i]}, column {features[j]!r}: {x[i, j]:g} is too large for float32; "
                        "rescale the column")
    x = x.astype(np.float32)
    try:
        ints = [int(v) for v in labels]
        values = sorted(set(ints))
        index = {v: i for i, v in enumerate(values)}
        y = np.array([index[v] for v in ints], dtype=np.int64)
        classes = [str(v) for v in values]
    except ValueError:
        classes = sorted(set(labels))
        index = {v: i for i, v in enumerate(classes)}
        y = np.array([index[v] for v in labels], dtype=np.int64)
    if len(classes) < 2:
        raise DataError(f"{path}: column {label!r} holds one class ({classes[0]!r}); a classifier needs at least 2")
    tr, te = stratified_split(y, cfg.test_fraction, cfg.split_seed, str(path))
    return make_data(cfg.name, x[tr], y[tr], x[te], y[te], classes)
