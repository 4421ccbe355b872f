"""Samplers: which samples each optimizer step uses. Each method is a module named after it."""

from .base import SAMPLERS, EpochOrderSampler, Lookahead, Sampler, SamplerContext, Scorer, Selection
from . import (c_sgd, importance, infobatch, max_loss_delta, multi_attempt, p_sgd,  # noqa: F401  (registers)
               selective_backprop, uniform)

__all__ = ["SAMPLERS", "EpochOrderSampler", "Lookahead", "Sampler", "SamplerContext", "Scorer", "Selection"]
