"""Your own model: ``model: {name: "package.module:factory"}`` or ``{name: "path/to/file.py:factory"}``.

The factory is called as ``factory(input_shape, num_classes, **settings)`` and returns an
``nn.Module`` mapping a batch to logits of shape (batch, num_classes); the model config's other
keys are the settings. ``build_model`` wraps it in ``Normalized`` like the built-in models.

A ``.py`` path is relative to the working directory (or absolute). The file is run as a module of
its own, named after its resolved path (``sys.path`` is left alone: the file imports installed
packages, not its neighbours), once per content: builds reuse one module object until the file
changes. ``factory_fingerprint`` hashes the source (the file, or the module's file), and the model
config carries it, so a trial's id changes when the model's code does.

Every problem (a missing module, file or attribute, an import that raises, a setting the factory's
signature does not take) is one ``ConfigError`` line naming the model and the fix.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import math
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from ..errors import ConfigError
from ..registry import brief

FORMS = "'package.module:factory' or 'path/to/file.py:factory'"
_IDENT = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

# resolved file path -> (sha256 of the bytes it was run from, module)
_FILE_MODULES: dict[Path, tuple[str, ModuleType]] = {}


def is_user_model(name: str) -> bool:
    """A factory spec rather than a built-in model's short name."""
    return ":" in name


def _q(spec: str) -> str:
    """The spec as a quoted one-line string (long ones are cut)."""
    return repr(spec) if len(spec) <= 300 else brief(spec)


def _first_line(e: BaseException, limit: int = 200) -> str:
    line = (str(e).strip().splitlines() or [""])[0]
    line = "".join(c if c.isprintable() else " " for c in line)
    return f"{type(e).__name__}: {line[:limit]}" if line else type(e).__name__


def _split(spec: str) -> tuple[str, str, bool]:
    """``(module or path, attribute, is_file)``; the attribute follows the last ':' (so a Windows
    drive letter stays in the path)."""
    target, _, attr = spec.rpartition(":")
    target = target.strip()
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    if not target or not attr or not spec.isprintable():
        raise ConfigError(f"model {_q(spec)}: expected {FORMS}")
    if not _IDENT.fullmatch(attr):
        raise ConfigError(f"model {_q(spec)}: {brief(attr)} is not a Python name; expected {FORMS}")
    if not is_file and not _IDENT.fullmatch(target):
        raise ConfigError(f"model {_q(spec)}: {brief(target)} is not a module name; expected {FORMS}")
    return target, attr, is_file


def _file_path(spec: str, target: str) -> Path:
    path = (Path.cwd() / Path(target).expanduser()).resolve()
    if not path.is_file():
        what = "is not a file" if path.exists() else "not found"
        raise ConfigError(f"model {_q(spec)}: {path} {what}; give the .py file's path relative to the "
                          f"working directory ({Path.cwd()}) or an absolute one")
    return path


def _read(spec: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(f"model {_q(spec)}: cannot read {path} ({e.strerror or e}); check its "
                          "permissions") from None


def _module_name(path: Path) -> str:
    stem = re.sub(r"\W", "_", path.stem) or "model"
    return f"_trainwise_user_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{stem}"


def _load_file(spec: str, path: Path) -> tuple[ModuleType, str]:
    """The module of ``path``'s current content and the content's sha256: run once, reused until
    the bytes change. The code is compiled from the bytes read and hashed (no stale or new
    ``__pycache__`` next to the user's file)."""
    source = _read(spec, path)
    digest = hashlib.sha256(source).hexdigest()
    cached = _FILE_MODULES.get(path)
    if cached and cached[0] == digest:
        return cached[1], digest
    name = _module_name(path)
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None:
        raise ConfigError(f"model {_q(spec)}: cannot load {path} as a Python module; give a .py file")
    module = importlib.util.module_from_spec(module_spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module  # as an import would: dataclasses, pickle and typing look it up
    try:
        exec(compile(source, str(path), "exec", dont_inherit=True), module.__dict__)  # noqa: S102
    except (Exception, SystemExit) as e:  # noqa: BLE001  (the user's file: any error is theirs to fix)
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
        raise ConfigError(f"model {_q(spec)}: running {path} raised {_first_line(e)}; fix the file") from e
    _FILE_MODULES[path] = (digest, module)
    return module, digest


def _import(spec: str, target: str) -> ModuleType:
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as e:
        if e.name and (target == e.name or target.startswith(e.name + ".")):
            raise ConfigError(f"model {_q(spec)}: no module named {e.name!r}; install it, put its directory "
                              f"on PYTHONPATH, or give the file as 'path/to/file.py:factory'") from None
        raise ConfigError(f"model {_q(spec)}: importing {target} raised {_first_line(e)}; fix the module "
                          "or install what it imports") from e
    except (Exception, SystemExit) as e:  # noqa: BLE001
        raise ConfigError(f"model {_q(spec)}: importing {target} raised {_first_line(e)}; fix the module") from e


def _module(spec: str) -> tuple[ModuleType, str, str, str | None]:
    """The module holding the factory, the attribute path, where it is (file path or module name)
    and the sha256 of its source (None for a module without a file)."""
    target, attr, is_file = _split(spec)
    if is_file:
        path = _file_path(spec, target)
        module, digest = _load_file(spec, path)
        return module, attr, str(path), digest
    module = _import(spec, target)
    file = getattr(module, "__file__", None)
    digest = None
    if file and Path(file).is_file():
        digest = hashlib.sha256(_read(spec, Path(file))).hexdigest()
    return module, attr, module.__name__, digest


def _get(spec: str, module: ModuleType, attr: str, where: str) -> Callable[..., Any]:
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"model {_q(spec)}: {where} has no attribute {attr!r}; it defines "
                              f"{_defined(module)}") from None
        except Exception as e:  # noqa: BLE001  (a module __getattr__ that raises)
            raise ConfigError(f"model {_q(spec)}: getting {attr!r} from {where} raised {_first_line(e)}") from e
    if not callable(obj):
        raise ConfigError(f"model {_q(spec)}: {attr!r} in {where} is not callable ({type(obj).__name__}); "
                          "name a function or class (input_shape, num_classes, **settings) -> nn.Module")
    return obj


def _defined(module: ModuleType) -> str:
    """The functions and classes defined in ``module``, for 'no such attribute' messages."""
    names = [k for k, v in vars(module).items() if not k.startswith("_") and (inspect.isfunction(v) or
             inspect.isclass(v)) and getattr(v, "__module__", None) == module.__name__]
    return ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") if names else "no functions or classes"


def resolve_factory(spec: str) -> Callable[..., Any]:
    """The callable that ``spec`` (``"pkg.mod:attr"`` or ``"path/to/file.py:attr"``) names."""
    module, attr, where, _ = _module(spec)
    return _get(spec, module, attr, where)


def factory_fingerprint(spec: str) -> str | None:
    """A short sha256 of the factory's source file (the .py file, or the module's file), or None
    when the module has no file. Part of the trial id: it changes when the code does."""
    digest = _module(spec)[3]
    return digest[:16] if digest else None


def qualified_name(spec: str) -> str:
    """What ran, for records: ``/abs/path/file.py:attr@sha256:<16 hex>`` for a file,
    ``package.module:attr@sha256:<16 hex>`` for a module (without the hash when it has no file)."""
    _, attr, where, digest = _module(spec)
    return f"{where}:{attr}@sha256:{digest[:16]}" if digest else f"{where}:{attr}"


def _json_able(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(map(_json_able, value))
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_able(v) for k, v in value.items())
    return False


def check_factory_settings(spec: str, factory: Callable[..., Any], settings: dict[str, Any]) -> None:
    """Check ``settings`` against the factory's signature: it must take (input_shape, num_classes)
    positionally, every setting by name (anything with ``**kwargs``) and be given every required
    one; each value must be plain data (numbers, strings, booleans, null, lists, mappings)."""
    for key, value in settings.items():
        if not _json_able(value):
            raise ConfigError(f"model {_q(spec)} setting {brief(key)}: {brief(value)} is not plain data; give "
                              "a finite number, string, boolean, null, list or mapping")
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to read (a builtin): the call will tell
        return
    params = list(sig.parameters.values())
    kinds = inspect.Parameter
    positional = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 and not any(p.kind == kinds.VAR_POSITIONAL for p in params):
        raise ConfigError(f"model {_q(spec)}: the factory's signature is {sig}, it must take "
                          "(input_shape, num_classes, **settings)")
    rest = [p for p in params[2:] if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)]
    allowed = [p.name for p in rest]
    if not any(p.kind == kinds.VAR_KEYWORD for p in params):
        unknown = sorted(set(settings) - set(allowed))
        if unknown:
            raise ConfigError(f"unknown setting(s) {brief(unknown)} for model {_q(spec)}; allowed: "
                              f"{', '.join(allowed) or 'none (the factory takes no settings)'}")
    missing = [p.name for p in rest if p.default is kinds.empty and p.name not in settings]
    if missing:
        raise ConfigError(f"model {_q(spec)} needs setting(s) {', '.join(missing)} (the factory's "
                          f"signature is {sig}); give them under model:")
    try:
        sig.bind(None, None, **settings)
    except TypeError as e:
        raise ConfigError(f"model {_q(spec)}: the factory's signature {sig} cannot take these settings "
                          f"({e}); change the settings or the signature") from None


def check_user_model(spec: str, settings: dict[str, Any]) -> str | None:
    """Resolve ``spec``, check ``settings`` against its signature, return its fingerprint."""
    module, attr, where, digest = _module(spec)
    check_factory_settings(spec, _get(spec, module, attr, where), settings)
    return digest[:16] if digest else None


__all__ = ["resolve_factory", "factory_fingerprint", "qualified_name", "check_factory_settings",
           "check_user_model", "is_user_model"]
