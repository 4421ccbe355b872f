"""Batch transforms: augmentations and input/target mixing. Each method is a module named after it."""

from .base import TRANSFORMS, Compose, Transform, TransformContext
from . import crop_flip  # noqa: F401  (registers)
from . import cascading_sum, cutmix, mixup, ricap, standard  # noqa: F401  (register)

__all__ = ["TRANSFORMS", "Compose", "Transform", "TransformContext"]
