"""Build each regimen once before any trial runs: a model, sampler or transform that cannot be
built, or that fails on a real batch, is one error line up front instead of a failed trial each.

For every distinct (model, optimizer, sampler, augment, loss, device) of a study's trials,
``preflight`` resolves the device, builds the model, optimizer, sampler and transforms as
``train()`` does, and runs one forward, loss and backward on a few real training samples
(through ``gather`` and the transforms). The global torch RNG state and the dataset are left
as they were.
"""

from __future__ import annotations

import json

import torch

from ..augment import TRANSFORMS, Compose, TransformContext
from ..data import TensorData, gather
from ..errors import TrainwiseError
from ..losses import get_loss, reduce_loss
from ..models import build_model
from ..sampling import SAMPLERS, SamplerContext
from .config import TrialConfig

SAMPLES = 4  # training samples in the dummy batch (BatchNorm needs 2)


def preflight(trials: list[TrialConfig], data: TensorData) -> None:
    """Raise a one-line ``TrainwiseError`` naming the regimen if one cannot train a step."""
    seen, stats = set(), data.channel_stats()
    for t in trials:
        key = json.dumps(t.model_dump(mode="json", include={"model", "optimizer", "sampler", "augment", "loss"})
                         | {"device": t.train.device}, sort_keys=True)
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
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model.name, data.input_shape, data.num_classes, mean, std,
                        **cfg.model.settings).to(device)
    opt = build_optimizer(model, cfg.optimizer)
    budget = cfg.make_budget(data.n_train)
    sampler = SAMPLERS.build(cfg.sampler, SamplerContext(budget, cfg.seed, data.y_train.cpu(), device))
    sampler.begin_epoch(0)
    tctx = TransformContext(data.num_classes, data.input_shape, budget, device, has_val=data.x_val is not None)
    transform = Compose([TRANSFORMS.build(spec, tctx) for spec in cfg.augment])
    loss_fn = get_loss(cfg.loss)

    # as many samples as a real batch has, up to SAMPLES per sum of a cascading-sum split grouping
    per = max([1] + [a.get("k", 1) for a in cfg.augment if a.get("grouping") == "split"])
    n = min(SAMPLES * per, cfg.train.batch_size, data.n_train)
    x, y = data.x_train[:n].to(device), data.y_train[:n].to(device)
    transform.on_step(0, budget.total_steps)
    batch = transform(gather(x, y, torch.arange(n), data.num_classes), torch.Generator().manual_seed(cfg.seed))
    model.train()
    logits = model(batch.x)
    transform.observe(logits, batch)
    per_sample = loss_fn(logits, batch.y)
    loss = reduce_loss(per_sample, batch.weight)
    if not bool(torch.isfinite(loss)):
        raise TrainwiseError(f"the loss of a first batch is {float(loss)}; fix its settings")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if getattr(sampler, "wants_feedback", False):
        with torch.no_grad():
            probs = logits.softmax(1)
            sampler.feedback(batch.idx, per_sample.detach(), probs.gather(1, batch.labels[:, None]).squeeze(1), probs)


__all__ = ["preflight"]
