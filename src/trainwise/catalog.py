"""``trainwise list``: everything a config can name, with its settings and defaults, read from the
registries and config schemas themselves (so the list cannot drift from the code)."""

from __future__ import annotations

import inspect
from typing import get_args

from pydantic import BaseModel


def _first_line(doc: str | None) -> str:
    text = " ".join((doc or "").strip().split("\n\n")[0].split())
    return text.replace("``", "").replace("*", "")


def _fields(model: type[BaseModel], skip: tuple[str, ...] = ()) -> list[str]:
    out = []
    for name, f in model.model_fields.items():
        if name in skip:
            continue
        default = "required" if f.is_required() else repr(f.default)
        desc = f" ({f.description})" if f.description else ""
        out.append(f"{name}={default}{desc}")
    return out


def _section(title: str, items: list[tuple[str, str, list[str]]]) -> list[str]:
    lines = [f"{title}:"]
    for name, doc, settings in items:
        lines.append(f"  {name}" + (f"  - {doc}" if doc else ""))
        for s in settings:
            lines.append(f"      {s}")
    return lines


def describe() -> str:
    from .augment import TRANSFORMS
    from .models import MODELS, model_settings
    from .robust.config import RobustnessConfig
    from .sampling import SAMPLERS
    from .config import DatasetConfig

    datasets = get_args(DatasetConfig.model_fields["name"].annotation)
    lines = _section("datasets (dataset.name)", [(d, "", []) for d in datasets])
    lines += ["  settings of every dataset:"] + [f"      {f}" for f in _fields(DatasetConfig, skip=("name", "synthetic"))]

    models = []
    for name, fn in MODELS.items():
        params = inspect.signature(fn).parameters
        settings = [f"{p}={params[p].default!r}" if params[p].default is not inspect.Parameter.empty
                    else f"{p}=required" for p in model_settings(name)]
        models.append((name, _first_line(fn.__doc__), settings))
    lines += _section("models (model.name, with its settings)", models)

    for title, reg in (("samplers (sampler / samplers:)", SAMPLERS),
                       ("augmentations (augment / augments:)", TRANSFORMS)):
        items = []
        for name in reg.names():
            cls = reg.get(name)
            doc = _first_line(cls.__dict__.get("__doc__")) or _first_line(inspect.getmodule(cls).__doc__)
            tasks = getattr(cls, "tasks", ("classification",)) if reg is SAMPLERS else None
            doc = f"{doc} [tasks: {', '.join(tasks)}]" if tasks else doc
            items.append((name, doc, _fields(cls.Settings)))
        lines += _section(title, items)

    from .losses import LOSSES
    from .retrieval import HINGE_LOSSES
    from .tasks import HINGE_DEFAULTS, TASKS

    lines += _section("tasks (task)", [(t, "", []) for t in TASKS])
    lines += _section("losses (loss)", [(n, "classification", []) for n in LOSSES]
                      + [(n, "retrieval", [f"{k}={v!r}" for k, v in HINGE_DEFAULTS.items()]) for n in HINGE_LOSSES])
    attacks = get_args(RobustnessConfig.model_fields["attack"].annotation)
    lines += _section("attacks (robustness.attack)", [(a, "", []) for a in attacks])
    lines += ["  settings of every attack:"] + [f"      {f}" for f in _fields(RobustnessConfig, skip=("attack",))]
    return "\n".join(lines)
