"""Build each regimen once before any trial runs: a model, sampler or transform that cannot be
built, or that fails on a real batch, is one error line up front instead of a failed trial each.

For every distinct (model, optimizer, sampler, augment, loss, device, precision) of a study's
trials, ``preflight`` resolves the device (and refuses a precision it cannot run), builds the
model, optimizer, sampler and transforms as ``train()`` does, and runs one forward (under the
run's autocast), loss and backward on a few real training samples
(through ``gather`` and the transforms). The model's output must be logits of shape (batch,
num_classes); for a user factory an exception in the factory, forward or backward is one line
naming the model. The global torch RNG state and the dataset are left as they were.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import replace
from typing import Iterator

import torch

from ..accel import Accel
from ..augment import TRANSFORMS, Compose, TransformContext
from ..data import TensorData
from ..errors import TrainwiseError
from ..models import build_model
from ..models.user import is_user_model
from ..sampling import SAMPLERS, SamplerContext, Selection
from ..tasks import make_task
from ..config import TrialConfig

SAMPLES = 4  # training samples in the dummy batch (BatchNorm needs 2)


def preflight(trials: list[TrialConfig], data: TensorData) -> None:
    """Raise a one-line ``TrainwiseError`` naming the regimen if one cannot train a step."""
    seen, stats = set(), data.channel_stats()
    for t in trials:
        key = json.dumps(t.model_dump(mode="json", include={"model", "optimizer", "sampler", "augment", "loss"})
                         | {"device": t.train.device, "precision": t.train.precision}, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        try:
            with torch.random.fork_rng(devices=[]):
                step_once(t, data, *stats)
        except TrainwiseError as e:
            raise TrainwiseError(f"regimen {t.regimen!r}: {e}") from None
        except Exception as e:  # noqa: BLE001  (anything a build or step raises is the regimen's problem)
            msg = (str(e).strip().splitlines() or [""])[0][:300]
            raise TrainwiseError(f"regimen {t.regimen!r}: {type(e).__name__}: {msg}; fix its settings") from None


def step_once(cfg: TrialConfig, data: TensorData, mean: torch.Tensor, std: torch.Tensor) -> None:
    """One training step of ``cfg`` on the first few training samples, on a throwaway model."""
    from ..train import build_optimizer, pick_device

    device = pick_device(cfg.train.device)
    accel = Accel(cfg.train, device)  # refuses a precision the device cannot run (fp16 on the CPU)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model.name, data.input_shape, data.num_classes, mean, std,
                        **cfg.model.settings).to(device)
    with _naming(cfg, "building the optimizer on its parameters"):
        opt = build_optimizer(model, cfg.optimizer)
    budget = cfg.make_budget(data.n_train)
    sampler = SAMPLERS.build(cfg.sampler, SamplerContext(budget, cfg.seed, data.y_train.cpu(), device))
    sampler.begin_epoch(0)
    tctx = TransformContext(data.num_classes, data.input_shape, budget, device, has_val=data.x_val is not None)
    transform = Compose([TRANSFORMS.build(spec, tctx) for spec in cfg.augment])
    task = make_task(cfg, data)

    # as many samples as a real batch has, up to SAMPLES per sum of a cascading-sum split grouping
    per = max([1] + [a.get("k", 1) for a in cfg.augment if a.get("grouping") == "split"])
    n = min(SAMPLES * per, cfg.train.batch_size, data.n_train)
    first = replace(data, x_train=data.x_train[:n].to(device), y_train=data.y_train[:n].to(device))
    transform.on_step(0, budget.total_steps)
    batch = transform(task.batch(first, Selection(torch.arange(n))), torch.Generator().manual_seed(cfg.seed))
    model.train()
    with accel.autocast():
        logits = accel.fp32(_forward(cfg, model, batch.x, data.num_classes, task.name))
    transform.observe(logits, batch)
    per_sample = task.loss(logits, batch, 0)
    loss = task.reduce(per_sample, batch.weight)
    if not bool(torch.isfinite(loss)):
        raise TrainwiseError(f"the loss of a first batch is {float(loss)}; fix its settings")
    opt.zero_grad(set_to_none=True)
    with _naming(cfg, "the backward"):
        loss.backward()
    opt.step()
    if getattr(sampler, "wants_feedback", False):
        sampler.feedback(batch.idx, per_sample.detach(), *task.feedback(logits, batch))


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:300]


@contextmanager
def _naming(cfg: TrialConfig, what: str) -> Iterator[None]:
    """For a user factory, an exception in the block becomes one TrainwiseError line naming the
    model and ``what`` raised (a built-in model's keeps preflight's per-regimen wording)."""
    try:
        yield
    except TrainwiseError:
        raise
    except Exception as e:
        if not is_user_model(cfg.model.name):
            raise
        raise TrainwiseError(f"model {cfg.model.name!r}: {what} raised {type(e).__name__}: {_first_line(e)}; "
                             "fix the model") from e


def _forward(cfg: TrialConfig, model: torch.nn.Module, x: torch.Tensor, num_classes: int,
             task: str = "classification") -> torch.Tensor:
    """``model(x)``, checked to be logits of shape (batch, num_classes), or for retrieval embeddings of
    shape (batch, 2, dim)."""
    with _naming(cfg, f"the forward on a batch of shape {tuple(x.shape)}"):
        logits = model(x)
    name = cfg.model.name
    if task == "retrieval":
        if not (isinstance(logits, torch.Tensor) and logits.dim() == 3 and tuple(logits.shape[:2]) == (len(x), 2)
                and logits.is_floating_point()):
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise TrainwiseError(f"model {name!r}: output {got}, but task retrieval needs each pair's two "
                                 f"embeddings, a float tensor of shape ({len(x)}, 2, dim)")
        return logits
    if not isinstance(logits, torch.Tensor):
        raise TrainwiseError(f"model {name!r}: output is a {type(logits).__name__}, not a tensor: the factory "
                             "must return a module whose forward returns logits of shape (batch, num_classes)")
    shape = tuple(logits.shape)
    if shape != (x.shape[0], num_classes):
        why = (f"the dataset has {num_classes} classes" if shape[:1] == (x.shape[0],)
               else f"the batch has {x.shape[0]} samples and the dataset {num_classes} classes")
        raise TrainwiseError(f"model {name!r}: output shape {shape} but {why}: the factory must return logits "
                             "of shape (batch, num_classes)")
    if not logits.is_floating_point():
        raise TrainwiseError(f"model {name!r}: output has dtype {logits.dtype}: the factory must return "
                             "floating-point logits of shape (batch, num_classes)")
    return logits


__all__ = ["preflight"]
