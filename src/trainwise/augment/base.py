"""The ``BatchTransform`` protocol: (inputs, soft targets) -> (inputs, soft targets), batched.

A transform takes a ``Batch`` (inputs in [0, 1], soft targets, labels, indices, weights)
and a ``torch.Generator`` (all randomness comes from it, so runs are reproducible and
resumable) and returns a new ``Batch``. Transforms that depend on training progress
(cascades) get ``on_step(step, total_steps)`` before each step; those with state
implement ``state_dict`` / ``load_state_dict``. Optional loop hooks, no-ops by default
(used by the Cascading Sum cascades): ``adjust_lr`` may replace the scheduled lr,
``observe(logits, batch)`` sees each step's logits (training metrics), ``wants_eval`` asks
for an extra evaluation at a step, and ``on_eval(record, model)`` may add fields to an
evaluation record and load other weights into the model (continue from a best checkpoint).

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
    has_val: bool = False  # the run has a validation split (val_acc in the eval records)


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

    def adjust_lr(self, step: int, total_steps: int, lr0: float, lr: float) -> float:
        return lr

    def observe(self, logits: torch.Tensor, batch: Batch) -> None:
        pass

    def wants_eval(self, step: int, total_steps: int) -> bool:
        return False

    def on_eval(self, record: dict, model: torch.nn.Module) -> None:
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

    def adjust_lr(self, step: int, total_steps: int, lr0: float, lr: float) -> float:
        for t in self.transforms:
            lr = t.adjust_lr(step, total_steps, lr0, lr)
        return lr

    def observe(self, logits: torch.Tensor, batch: Batch) -> None:
        for t in self.transforms:
            t.observe(logits, batch)

    def wants_eval(self, step: int, total_steps: int) -> bool:
        return any(t.wants_eval(step, total_steps) for t in self.transforms)

    def on_eval(self, record: dict, model: torch.nn.Module) -> None:
        for t in self.transforms:
            t.on_eval(record, model)

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
