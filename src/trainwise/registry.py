"""Name -> component registries for samplers and batch transforms.

A component is a class with a nested pydantic ``Settings`` model (unknown keys are
rejected) and a constructor ``cls(ctx, settings)``. A study config names it as a
string (``uniform``) or a mapping (``{name: mixup, alpha: 0.2}``).
"""

from __future__ import annotations

import reprlib
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60
_repr.maxlevel, _repr.maxlist, _repr.maxdict = 2, 4, 4


def brief(value: Any) -> str:
    """A short, one-line repr of a user's value for error messages (long or nested input is cut)."""
    return _repr.repr(value)


class Settings(BaseModel):
    """Base for component settings: unknown keys are errors, values are checked by type and
    bounds (NaN and infinity are never a valid number here)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, type] = {}

    def register(self, name: str):
        def deco(cls):
            cls.name = name
            self._items[name] = cls
            return cls

        return deco

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> type:
        if name not in self._items:
            raise ConfigError(f"unknown {self.kind} {brief(name)}; allowed: {', '.join(self.names())}")
        return self._items[name]

    def validate(self, spec: str | dict[str, Any]) -> dict[str, Any]:
        """Check a spec; return it normalised to ``{"name": ..., **settings}`` with defaults filled."""
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ConfigError(f"a {self.kind} is a name or a mapping with a 'name' key, got {brief(spec)}")
        spec = dict(spec)
        name = spec.pop("name")
        cls = self.get(name)
        try:
            settings = cls.Settings.model_validate(spec)
        except ValidationError as e:
            err = e.errors()[0]
            key = brief(".".join(str(p) for p in err["loc"]))
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(cls.Settings.model_fields) or "none"
                raise ConfigError(
                    f"unknown setting {key} for {self.kind} {name!r}; allowed: {allowed}"
                ) from None
            msg = err["msg"].removeprefix("Value error, ")
            where = f"{self.kind} {name!r} setting {key}" if err["loc"] else f"{self.kind} {name!r}"
            raise ConfigError(f"{where}: {msg}") from None
        return {"name": name, **settings.model_dump()}

    def build(self, spec: str | dict[str, Any], ctx: Any):
        spec = self.validate(spec)
        cls = self.get(spec.pop("name"))
        return cls(ctx, cls.Settings(**spec))
