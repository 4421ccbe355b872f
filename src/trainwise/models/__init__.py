"""Model registry: ``build_model(name, input_shape, num_classes, mean, std, **settings)``.

Every model is wrapped in ``Normalized`` so it takes inputs in [0, 1].
"""

from __future__ import annotations

import inspect
from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError
from .preact_resnet import preact_resnet18
from .simple import cnn, linear, mlp
from .wrapper import Normalized

MODELS: dict[str, Callable[..., nn.Module]] = {
    "linear": linear,
    "mlp": mlp,
    "cnn": cnn,
    "preact-resnet18": preact_resnet18,
}


def model_settings(name: str) -> list[str]:
    """The keyword settings a model accepts (beyond input shape and class count)."""
    params = list(inspect.signature(MODELS[name]).parameters)
    return params[2:]


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    mean: torch.Tensor,
    std: torch.Tensor,
    **settings,
) -> nn.Module:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}")
    unknown = set(settings) - set(model_settings(name))
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {sorted(unknown)} for model {name!r}; allowed: {model_settings(name)}"
        )
    return Normalized(MODELS[name](input_shape, num_classes, **settings), mean, std)
