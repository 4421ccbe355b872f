"""``standard``: an alias of ``crop-flip`` (zero-pad 2, random crop, random horizontal flip), the
"standard augmentation" of the budgeted-training studies (Arazo et al., BMVC 2021), so that a
study grid can name it next to the mixing methods."""

from __future__ import annotations

from .base import TRANSFORMS
from .crop_flip import CropFlip


@TRANSFORMS.register("standard")
class Standard(CropFlip):
    """Same settings and behaviour as ``crop-flip``."""
