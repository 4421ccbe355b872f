"""Batch transforms: augmentations and input/target mixing. Each method is a module named after it."""

from .base import TRANSFORMS, Compose, Transform, TransformContext
from . import crop_flip  # noqa: F401  (registers)

__all__ = ["TRANSFORMS", "Compose", "Transform", "TransformContext"]
