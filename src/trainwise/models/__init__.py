"""Model registry: ``build_model(name, input_shape, num_classes, mean, std, **settings)``.

``name`` is a built-in model (``MODELS``) or the user's factory, ``"package.module:factory"`` or
``"path/to/file.py:factory"`` (see user.py). Every model is wrapped in ``Normalized`` so it takes
inputs in [0, 1].
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Callable, get_type_hints

import torch
from pydantic import ConfigDict, TypeAdapter, ValidationError
from torch import nn

from ..errors import ConfigError
from ..registry import brief
from .preact_resnet import preact_resnet18
from .simple import cnn, linear, mlp
from .two_tower import two_tower
from .user import check_factory_settings, is_user_model, resolve_factory
from .wrapper import Normalized

MODELS: dict[str, Callable[..., nn.Module]] = {
    "linear": linear,
    "mlp": mlp,
    "cnn": cnn,
    "preact-resnet18": preact_resnet18,
    "two-tower": two_tower,
}


def model_settings(name: str) -> list[str]:
    """The keyword settings a model accepts (beyond input shape and class count)."""
    params = list(inspect.signature(MODELS[name]).parameters)
    return params[2:]


def check_model_settings(name: str, settings: dict[str, Any]) -> None:
    """Check each setting against the model function's annotation, strictly (``width: "32"`` or
    ``width: 32.5`` are errors, not coerced) and with its bounds; raise a one-line ConfigError."""
    hints = get_type_hints(MODELS[name], include_extras=True)
    for key, value in settings.items():
        try:
            TypeAdapter(hints.get(key, Any), config=ConfigDict(strict=True)).validate_python(value)
        except ValidationError as e:
            raise ConfigError(f"model {name!r} setting {key!r}: {e.errors()[0]['msg']}, got {brief(value)}") from None


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    mean: torch.Tensor,
    std: torch.Tensor,
    **settings,
) -> nn.Module:
    if is_user_model(name):
        return Normalized(build_user_model(name, input_shape, num_classes, **settings), mean, std)
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}, or your own factory as "
                          "'package.module:factory' or 'path/to/file.py:factory'")
    unknown = set(settings) - set(model_settings(name))
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {sorted(unknown)} for model {name!r}; allowed: {model_settings(name)}"
        )
    check_model_settings(name, settings)
    return Normalized(MODELS[name](input_shape, num_classes, **settings), mean, std)


def build_user_model(spec: str, input_shape: tuple[int, ...], num_classes: int, **settings) -> nn.Module:
    """``factory(input_shape, num_classes, **settings)`` of the factory ``spec`` names (unwrapped);
    whatever goes wrong is a one-line ConfigError naming the model."""
    factory = resolve_factory(spec)
    check_factory_settings(spec, factory, settings)
    try:
        net = factory(tuple(input_shape), num_classes, **copy.deepcopy(settings))  # the config's own stay intact
    except Exception as e:  # noqa: BLE001  (the user's code: any error is theirs to fix)
        msg = (str(e).strip().splitlines() or [""])[0][:300]
        raise ConfigError(f"model {spec!r}: the factory raised {type(e).__name__}: {msg}; fix the factory or "
                          "its settings") from e
    if not isinstance(net, nn.Module):
        raise ConfigError(f"model {spec!r}: the factory returned a {type(net).__name__}, not a torch.nn.Module; "
                          "return the network (logits of shape (batch, num_classes))")
    return net
