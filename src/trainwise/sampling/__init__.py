"""Samplers: which samples each optimizer step uses. Each method is a module named after it."""

from .base import SAMPLERS, EpochOrderSampler, Lookahead, Sampler, SamplerContext, Scorer, Selection
from . import (c_sgd, gradient_clustering, importance, infobatch, max_loss_delta, multi_attempt,  # noqa: F401
               p_sgd, selective_backprop, uniform)  # (registers)

__all__ = ["SAMPLERS", "EpochOrderSampler", "Lookahead", "Sampler", "SamplerContext", "Scorer", "Selection"]
