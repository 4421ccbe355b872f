"""Fashion-MNIST (Zalando Research): 70,000 28x28 grayscale images, 10 classes.

Source: https://github.com/zalandoresearch/fashion-mnist, four gzip'd IDX files
served from ``OFFICIAL_URL``. Looked up in ``data_dir``, ``$TRAINWISE_DATA/fashion-mnist``,
the Debian package directory ``/usr/share/datasets/fashion-mnist``
(``apt-get install dataset-fashion-mnist``) and the download cache; downloaded into
the cache only when asked to, and only kept when the SHA-256 matches.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import TensorData
from .download import cache_dir, download_file, locate, search_dirs, sha256_file
from .idx import read_idx

NAME = "fashion-mnist"
NUM_CLASSES = 10
OFFICIAL_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
URL_ENV = "TRAINWISE_FASHION_MNIST_URL"
SYSTEM_DIRS = ["/usr/share/datasets/fashion-mnist"]

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILES = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# SHA-256 of the files as served from OFFICIAL_URL (their MD5s are the ones torchvision
# pins: 8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...). Downloads are checked against these.
SHA256 = {
    TRAIN_IMAGES: "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
    TRAIN_LABELS: "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
    TEST_IMAGES: "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
    TEST_LABELS: "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
}

# SHA-256 of the files shipped by Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1.
# Debian's packaging rewrote the gzip headers (file name dropped, a 2020 time stamp), so these
# bytes differ from the official files, whose sizes are larger by exactly the dropped name.
DEBIAN_SHA256 = {
    TRAIN_IMAGES: "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    TRAIN_LABELS: "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    TEST_IMAGES: "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    TEST_LABELS: "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}


def _download(base_url: str) -> Path:
    dest = cache_dir() / NAME
    for name in FILES:
        target = dest / name
        if target.is_file() and sha256_file(target) == SHA256[name]:
            continue  # already verified; never overwrite a good file
        download_file(base_url.rstrip("/") + "/" + name, target, SHA256[name])
    return dest


def _split(directory: Path, images_name: str, labels_name: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(directory / images_name)
    labels = read_idx(directory / labels_name)
    where = f"Fashion-MNIST in {directory}"
    fix = "replace the files with the official ones (or reinstall dataset-fashion-mnist)"
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(
            f"{where}: {images_name} holds {images.dtype} {images.shape}, expected uint8 (N, 28, 28); {fix}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{where}: {labels_name} holds {labels.dtype} {labels.shape}, expected uint8 (N,); {fix}")
    if len(labels) != len(images):
        raise DataError(
            f"{where}: {images_name} has {len(images)} images but {labels_name} has {len(labels)} labels; {fix}"
        )
    if len(labels) and int(labels.max()) >= NUM_CLASSES:
        raise DataError(f"{where}: {labels_name} has label {int(labels.max())}, expected 0..9; {fix}")
    x = torch.from_numpy(images).unsqueeze(1)  # uint8; as_float gives the [0, 1] input
    return x, torch.from_numpy(labels.astype(np.int64))


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    base_url: str | None = None,
) -> TensorData:
    """Load Fashion-MNIST as (N, 1, 28, 28) uint8 images (``as_float``: [0, 1]) and int64 labels."""
    directory = locate(NAME, FILES, data_dir, SYSTEM_DIRS)
    if directory is None:
        if not download:
            looked = ", ".join(str(d) for d in search_dirs(NAME, None, SYSTEM_DIRS))
            raise DataError(
                f"Fashion-MNIST not found (looked in: {looked}); install it with "
                f"`apt-get install dataset-fashion-mnist`, put the four IDX .gz files in "
                f"$TRAINWISE_DATA/fashion-mnist or set dataset.data_dir, or set dataset.download: true"
            )
        directory = _download(base_url or os.environ.get(URL_ENV) or OFFICIAL_URL)
    x_train, y_train = _split(directory, TRAIN_IMAGES, TRAIN_LABELS)
    x_test, y_test = _split(directory, TEST_IMAGES, TEST_LABELS)
    return TensorData(
        name=NAME,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=NUM_CLASSES,
        classes=list(CLASSES),
    )
