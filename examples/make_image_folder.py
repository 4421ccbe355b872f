"""Write a Fashion-MNIST image folder: OUT/train/<class>/*.png and OUT/test/<class>/*.png.

    python examples/make_image_folder.py [OUT] [--train-per-class 200] [--test-per-class 50]

A stand-in for "your own images" in examples/own_data.yaml and examples/own_data.py: ten class
folders of 28x28 grayscale PNGs, taken (seeded) from the Fashion-MNIST training and test sets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]


def write_split(out: Path, x: np.ndarray, y: np.ndarray, per_class: int, rng: np.random.Generator) -> int:
    n = 0
    for c, name in enumerate(CLASSES):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        idx = rng.permutation(np.flatnonzero(y == c))[:per_class]
        for i in idx:
            Image.fromarray(x[i]).save(folder / f"{i:05d}.png")
            n += 1
    return n


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", default="data/fashion-folder")
    p.add_argument("--train-per-class", type=int, default=200)
    p.add_argument("--test-per-class", type=int, default=50)
    args = p.parse_args(argv)
    out = Path(args.out)
    if (out / "train").is_dir() and (out / "test").is_dir():
        print(f"{out} exists; delete it to write it again")
        return out
    from trainwise.data.fashion_mnist import load_fashion_mnist

    data = load_fashion_mnist(None, False)
    to_u8 = (lambda t: t.numpy() if t.dtype.is_floating_point is False
             else (t.numpy() * 255).round().astype(np.uint8))
    rng = np.random.default_rng(0)
    n_train = write_split(out / "train", to_u8(data.x_train)[:, 0], data.y_train.numpy(), args.train_per_class, rng)
    n_test = write_split(out / "test", to_u8(data.x_test)[:, 0], data.y_test.numpy(), args.test_per_class, rng)
    print(f"wrote {n_train} training and {n_test} test images in {len(CLASSES)} class folders under {out}")
    return out


if __name__ == "__main__":
    main()
