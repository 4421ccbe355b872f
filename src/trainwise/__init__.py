"""trainwise: for my data and my compute budget, which training procedure gives the best model?

The data path, top to bottom (see ``trainwise.train``):
dataset tensors -> sampler picks indices -> batch transform mixes inputs and soft
targets -> model -> per-sample loss (optional weights) -> feedback to the sampler ->
optimizer step under a budget-aware learning-rate schedule.
"""

__version__ = "0.1.0"

# The public API (see trainwise.api), imported on first use so that ``import trainwise`` stays light.
_API = {"run_study": "api", "fit": "api", "model_spec": "api", "TensorData": "data",
        "StudyConfig": "study.config", "TrialConfig": "config", "load_config": "config_load"}


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'trainwise' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])


__all__ = ["__version__", *_API]
