"""Datasets, loaded once as tensors: images uint8 (converted per batch), features float32.

``load_dataset(cfg)`` returns a ``TensorData`` for a ``DatasetConfig``: the raw set (built-in,
or the user's image folder, arrays, CSV or Python function), then the optional per-class limit
and validation split (both stratified and seeded by ``split_seed``; the test set is never
touched), then the storage (in memory, or memory-mapped files for data larger than RAM).
"""

from __future__ import annotations

from .base import TensorData, limit_per_class, split_validation
from .fingerprint import fingerprint
from .loader import Batch, gather

DATASETS = ("digits", "fashion-mnist", "cifar10", "cifar100", "synthetic", "fashion-halves", "synthetic-paired")
PAIRED_DATASETS = ("fashion-halves", "synthetic-paired")  # two views per item (paired.py): retrieval


def load_raw(cfg) -> TensorData:
    if cfg.name == "digits":
        from .digits import load_digits

        return load_digits()
    if cfg.name == "fashion-mnist":
        from .fashion_mnist import load_fashion_mnist

        return load_fashion_mnist(cfg.data_dir, cfg.download)
    if cfg.name in ("cifar10", "cifar100"):
        from .cifar import load_cifar

        return load_cifar(cfg.name, cfg.data_dir, cfg.download)
    if cfg.name == "synthetic":
        from .synthetic import make_synthetic

        return make_synthetic(**cfg.synthetic.model_dump(exclude={"positives"}))
    if cfg.name == "fashion-halves":
        from .paired import load_fashion_halves

        return load_fashion_halves(cfg.data_dir, cfg.download)
    if cfg.name == "synthetic-paired":
        from .paired import make_synthetic_paired

        sy = cfg.synthetic
        return make_synthetic_paired(sy.n_train, sy.n_test, sy.size, sy.noise, sy.positives)
    if cfg.name == "image-folder":
        from .image_folder import load_image_folder

        return load_image_folder(cfg)
    if cfg.name == "arrays":
        from .arrays import load_arrays

        return load_arrays(cfg)
    if cfg.name == "csv":
        from .csv_table import load_csv

        return load_csv(cfg)
    if cfg.name == "python":
        from .python_source import load_python

        return load_python(cfg)
    raise ValueError(f"unknown dataset {cfg.name!r}")


def load_dataset(cfg) -> TensorData:
    data = load_raw(cfg)
    if cfg.limit_per_class:
        data = limit_per_class(data, cfg.limit_per_class, cfg.split_seed)
    if cfg.val_fraction > 0:
        data = split_validation(data, cfg.val_fraction, cfg.split_seed)
    from .storage import apply_storage  # memory, or inputs in memory-mapped files (dataset.storage)

    return apply_storage(data, getattr(cfg, "storage", "auto"))


__all__ = ["DATASETS", "PAIRED_DATASETS", "TensorData", "Batch", "gather", "load_dataset", "limit_per_class", "split_validation", "fingerprint"]
