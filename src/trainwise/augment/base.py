"""The ``BatchTransform`` protocol: (inputs, soft targets) -> (inputs, soft targets), batched.

A transform takes a ``Batch`` (inputs in [0, 1], soft targets, labels, indices, weights)
and a ``torch.Generator`` (all randomness comes from it, so runs are reproducible and
resumable) and returns a new ``Batch``. Transforms that depend on training progress
(cascades) get ``on_step(step, total_steps)`` before each step; those with state
implement ``state_dict`` / ``load_state_dict``.

The convention for new methods: a plain function on tensors (the functional core, e.g.
``mixup(x, y, lam, perm)``) plus a thin registered class that draws the randomness.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..budget import Budget
from ..data.loader import Batch
from ..registry import Registry, Settings


@dataclass
class TransformContext:
    num_classes: int
    input_shape: tuple[int, ...]
    budget: Budget
    device: torch.device


class Transform:
    """Base class with no-op hooks; subclasses implement ``__call__``."""

    Settings = Settings

    def __init__(self, ctx: TransformContext, settings: Settings):
        self.ctx = ctx
        self.settings = settings

    def __call__(self, batch: Batch, gen: torch.Generator) -> Batch:
        raise NotImplementedError

    def on_step(self, step: int, total_steps: int) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, sd: dict) -> None:
        pass


class Compose:
    """Apply transforms in order (e.g. crop-flip, then mixup)."""

    def __init__(self, transforms: list[Transform]):
        self.transforms = transforms

    def __call__(self, batch: Batch, gen: torch.Generator) -> Batch:
        for t in self.transforms:
            batch = t(batch, gen)
        return batch

    def on_step(self, step: int, total_steps: int) -> None:
        for t in self.transforms:
            t.on_step(step, total_steps)

    def state_dict(self) -> dict:
        return {str(i): t.state_dict() for i, t in enumerate(self.transforms)}

    def load_state_dict(self, sd: dict) -> None:
        for i, t in enumerate(self.transforms):
            t.load_state_dict(sd.get(str(i), {}))


TRANSFORMS = Registry("augmentation")


@TRANSFORMS.register("none")
class Identity(Transform):
    def __call__(self, batch: Batch, gen: torch.Generator) -> Batch:
        return batch
