"""Samplers: which samples each optimizer step uses. Each method is a module named after it."""

from .base import SAMPLERS, EpochOrderSampler, Sampler, SamplerContext, Scorer, Selection
from . import c_sgd, importance, infobatch, p_sgd, selective_backprop, uniform  # noqa: F401  (registers)

__all__ = ["SAMPLERS", "EpochOrderSampler", "Sampler", "SamplerContext", "Scorer", "Selection"]
