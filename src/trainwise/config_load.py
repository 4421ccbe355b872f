"""Reading configs: YAML text, ``--set key=value`` overrides and validation into one line.

``load_config(path, Model, overrides)`` turns encoding, YAML (duplicate keys included), override
and validation problems into one ``ConfigError`` line naming the file, the key's location and
the allowed values. Works for any config model (trial, study, multisplit, probe).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence, get_args

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError
from .registry import brief


def _inner_model(ann: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``list[RegimenConfig] | None`` -> RegimenConfig)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    return next(filter(None, map(_inner_model, get_args(ann))), None)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model at ``loc``, for 'unknown key' messages."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = field and _inner_model(field.annotation)
        if model is None:
            return []
    return list(model.model_fields)


# parts pydantic adds to an error's location for the member of a union that failed
_UNION_PART = re.compile(r"(str|int|float|bool|list|dict|union|nullable|function-\w+)(\[.*\])?")


def _one_line(s: str, limit: int = 0) -> str:
    """``s`` with control characters escaped (a message stays one line), cut to ``limit`` if given."""
    s = "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)
    return s[:limit - 3] + "..." if limit and len(s) > limit else s


def format_validation_error(e: ValidationError, model: type[BaseModel], where: str) -> str:
    err = e.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _UNION_PART.fullmatch(p)))
    key = _one_line(".".join(str(p) for p in loc), 120) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"{where}: unknown key '{key}'; allowed here: {', '.join(allowed)}"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "literal_error":
        msg = f"got {brief(err['input'])}; {msg.lower()}"
    return f"{where}: '{key}': {msg}"


def parse_config(data: Any, model: type[BaseModel], where: str = "config"):
    if not isinstance(data, dict):
        what = "is empty" if data is None else f"holds a value of type {type(data).__name__} at the top level"
        raise ConfigError(_one_line(f"{where} {what}; write a YAML mapping of settings (key: value lines)"))
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_one_line(format_validation_error(e, model, where))) from None


class DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *anchor' merges, they may repeat keys
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                twice = key in first
            except TypeError:  # an unhashable key: SafeLoader reports it
                continue
            if twice:
                line = key_node.start_mark.line + 1
                raise DuplicateKeyError(None, None, f"duplicate key {brief(key)} at line {line} (first given at "
                                        f"line {first[key]})", key_node.start_mark)
            first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, where: str) -> Any:
    """``text`` as plain YAML data (a SafeLoader that refuses duplicate keys); problems are one
    ConfigError line starting with ``where``."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader)
    except DuplicateKeyError as e:
        raise ConfigError(_one_line(f"{where}: {e.problem}; keep one of them")) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(_one_line(f"{where}: YAML syntax error{at}: {problem}; fix the syntax")) from None
    except (RecursionError, ValueError, OverflowError) as e:  # nesting too deep, 5000-digit numbers
        raise ConfigError(_one_line(f"{where}: cannot read the YAML ({type(e).__name__}: "
                                    f"{str(e).split(';')[0][:100]}); simplify the config")) from None


def apply_override(data: dict, item: str) -> None:
    """Apply one ``--set key=value`` to the raw config mapping: ``key`` is a dotted path (missing
    mappings are created, integer parts index lists), ``value`` is parsed as YAML."""
    key, eq, text = item.partition("=")
    parts = key.strip().split(".")
    if not eq or not all(parts):
        raise ConfigError(_one_line(f"--set {item!r}: expected key=value with a dotted key, e.g. "
                                    "--set train.epochs=5", 300))
    value = parse_yaml(text, _one_line(f"--set {item!r}", 200))
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        at = ".".join(parts[:i]) or "the top level"
        if isinstance(node, list):
            if not (part.isdigit() and int(part) < len(node)):
                raise ConfigError(_one_line(f"--set {item!r}: {at} is a list of {len(node)}; index it with "
                                            f"0 to {len(node) - 1}", 300))
            part = int(part)
        elif not isinstance(node, dict):
            raise ConfigError(_one_line(f"--set {item!r}: {at} is a {type(node).__name__}, not a mapping; "
                                        "set it as a whole", 300))
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = {}
            node = node[part]


MAX_CONFIG_BYTES = 1_000_000


def load_config(path: str | Path, model: type[BaseModel], overrides: Sequence[str] = ()):
    """Read, override (``--set key=value``, see ``apply_override``) and validate a YAML config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(_one_line(f"config file {path} not found; pass the path of a YAML config"))
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(_one_line(f"cannot read config file {path} ({e.strerror or e}); check its "
                                    "permissions")) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(_one_line(f"{path} is {len(raw)} bytes, too large for a config (at most "
                                    f"{MAX_CONFIG_BYTES}); pass a YAML config file"))
    try:
        text = raw.decode("utf-8-sig")
        if (nul := text.find("\0")) >= 0:
            raise UnicodeError(f"a NUL byte at offset {nul}")
    except UnicodeError as e:
        why = e.reason if isinstance(e, UnicodeDecodeError) else e
        raise ConfigError(_one_line(f"{path} is not UTF-8 text ({why}); save the config as UTF-8 YAML "
                                    "(not UTF-16 or a binary file)")) from None
    data = parse_yaml(text, str(path))
    if overrides and data is None:
        data = {}  # an empty file: the overrides are the whole config
    if isinstance(data, dict):
        for item in overrides:
            apply_override(data, item)
    return parse_config(data, model, f"{path} with --set" if overrides else str(path))
