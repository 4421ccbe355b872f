"""The public Python API: the CLI's ``study`` and ``train`` as functions, on your data and model.

    import trainwise

    rows = trainwise.run_study("study.yaml", out="studies/mine")            # as `trainwise study`
    rows = trainwise.run_study({"name": "mine", "regimens": [...], ...},
                               data=(x_train, y_train, x_test, y_test), model=my_factory)
    result = trainwise.fit({"train": {"epochs": 3}}, data=(train_ds, test_ds), model=my_factory)

(``fit``, not ``train``: ``trainwise.train`` is the module holding the training loop.)

``config``: a YAML path, a dict (validated like the YAML) or a ``StudyConfig`` / ``TrialConfig``.
``data``: a ``TensorData``; arrays or tensors ``(x_train, y_train, x_test, y_test)``; or
``(train, test)`` map-style ``torch.utils.data.Dataset``s (or ``(x, y)`` pairs). In-memory data
is written once under ``out/data/`` as ``.npy`` files and the config then names it as an
``arrays`` dataset with its content fingerprint, so the stored config describes the data that was
used, worker processes can load it, and a rerun with the same data resumes.
``model``: a factory ``(input_shape, num_classes, **settings) -> nn.Module`` defined in a module or
a ``.py`` file (not interactively): the config records it as ``"file.py:name"`` or
``"package.module:name"``, so the trial id names it and its source.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .config import TrialConfig
from .config_load import load_config, parse_config
from .study.config import StudyConfig


def _config(config, kind):
    if isinstance(config, kind):
        return config.model_dump(mode="json", exclude_defaults=True)
    if isinstance(config, (str, os.PathLike)):
        return load_config(config, kind).model_dump(mode="json", exclude_defaults=True)
    if isinstance(config, dict):
        return dict(config)
    raise ConfigError(f"config must be a YAML path, a dict or a {kind.__name__}, got {type(config).__name__}")


def model_spec(factory) -> str:
    """``"file.py:name"`` (relative to the working directory when under it) or ``"module:name"``."""
    if isinstance(factory, str):
        return factory
    name = getattr(factory, "__qualname__", None)
    if not callable(factory) or not name or "<" in name:
        raise ConfigError("model must be a factory function or class defined at the top level of a module or "
                          ".py file (input_shape, num_classes, **settings) -> nn.Module")
    module = getattr(factory, "__module__", None)
    try:
        source = inspect.getsourcefile(factory)
    except TypeError:
        source = None
    from_file = module == "__main__" or (module or "").startswith(("_trainwise_user_", "trainwise_user_"))
    if from_file or (source and not _importable(module, factory)):
        if not source:
            raise ConfigError(f"model {name!r} has no source file (defined interactively?); define it in a .py file")
        path = Path(source).resolve()
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            pass
        return f"{path}:{name}"
    return f"{module}:{name}"


def _importable(module: str | None, factory) -> bool:
    import importlib

    try:
        return getattr(importlib.import_module(module), factory.__qualname__, None) is factory
    except Exception:  # noqa: BLE001
        return False


def _with(d: dict, model, data, out: Path | None) -> dict:
    d = dict(d)
    if model is not None:
        settings = {k: v for k, v in (d.get("model") or {}).items() if k not in ("name", "fingerprint")}
        d["model"] = {**settings, "name": model_spec(model)}  # the fingerprint is the new factory's
    if data is not None:
        from .data.user import save_as_arrays

        if out is None:
            raise ConfigError("pass out= (a directory) with data=: the data is stored there for the run's workers")
        keep = {k: v for k, v in (d.get("dataset") or {}).items()
                if k in ("val_fraction", "limit_per_class", "split_seed", "storage")}
        d["dataset"] = {**keep, **save_as_arrays(data, out / "data")}
    return d


def run_study(config, data=None, model=None, out: str | os.PathLike | None = None, workers: int = 1,
              executor: str = "local", retry_failed: bool = False, progress: bool | None = False,
              report: bool = True) -> list[dict]:
    """Run (or resume) a study and return one row per trial (``metrics``: the result of each);
    with ``report`` also write report.md / report.html into ``out`` (default studies/<name>)."""
    from .study.runner import run_study as _run

    d = _config(config, StudyConfig)
    name = d.get("name", "study")
    out = Path(out) if out is not None else Path("studies") / str(name)
    cfg = parse_config(_with(d, model, data, out), StudyConfig, "config")
    return _run(cfg, out, workers=workers, retry_failed=retry_failed, executor=executor, progress=progress,
                report=report, echo=lambda *a: None if progress is False else print(*a))


def fit(config=None, data=None, model=None, out: str | os.PathLike | None = None, resume: bool = False,
        progress: bool | None = False) -> dict[str, Any]:
    """Run one trial and return its result row; with ``out`` it checkpoints there (``resume`` continues)."""
    from .data import load_dataset
    from .lock import DirLock
    from .study.preflight import preflight
    from .train import train as _train

    d = _config(config if config is not None else {}, TrialConfig)
    out = Path(out) if out is not None else None
    cfg = parse_config(_with(d, model, data, out), TrialConfig, "config")
    loaded = load_dataset(cfg.dataset)
    cfg = cfg.with_fingerprint(loaded)
    cfg.make_budget(loaded.n_train)
    preflight([cfg], loaded)
    if out is None:
        return _train(cfg, None, progress=progress, data=loaded)
    with DirLock(out, "trainwise.train"):
        return _train(cfg, out, resume=resume, progress=progress, data=loaded)


__all__ = ["run_study", "fit", "model_spec"]
