"""The Python API on your own data and model: build an image folder, define a model here, run a
study of three regimens on it and write its report.

    python examples/own_data.py          # from the repository root

It runs the study of examples/own_data.yaml: the same config, the model given as a function
(recorded as "examples/own_data.py:tiny_net"), so the trial ids and results are identical to
``trainwise study examples/own_data.yaml``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from torch import nn


def tiny_net(input_shape, num_classes, width: int = 16) -> nn.Module:
    """Two conv-BN-ReLU-pool stages and a linear head: a small CNN for 28x28 images."""
    c = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
        nn.Flatten(), nn.Linear(2 * width, num_classes),
    )


def main() -> None:
    import trainwise

    sys.path.insert(0, str(Path(__file__).parent))
    from make_image_folder import main as make_image_folder

    make_image_folder(["data/fashion-folder"])
    config = trainwise.load_config("examples/own_data.yaml", trainwise.StudyConfig).model_dump(exclude_defaults=True)
    rows = trainwise.run_study(config, model=tiny_net, out="studies/own_data_api", progress=None)
    for r in rows:
        print(r["regimen"], r["seed"], r["trial_id"], r["metrics"]["test_acc"] if r["metrics"] else r["error"])
    print("report: studies/own_data_api/report.html")


if __name__ == "__main__":
    main()
