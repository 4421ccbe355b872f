"""Samplers: which samples each optimizer step uses. Each method is a module named after it."""

from .base import SAMPLERS, EpochOrderSampler, Sampler, SamplerContext, Scorer, Selection
from . import uniform  # noqa: F401  (registers)

__all__ = ["SAMPLERS", "EpochOrderSampler", "Sampler", "SamplerContext", "Scorer", "Selection"]
