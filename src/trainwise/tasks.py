"""The task seam: what a batch holds, its per-sample loss, and how a model is scored.

A run is data -> model -> per-sample loss -> metrics for more than one kind of problem. The
loop (``train.py``) stays one loop; it asks the run's task for the steps that differ:

    task.batch(data, sel)               the training batch of the sampler's indices
    task.loss(outputs, batch, epoch)    per-sample losses
    task.reduce(per_sample, weight)     the loss to backpropagate (mean, or the reference's sum)
    task.feedback(outputs, batch)       (p_true, probs) for samplers that want them, else Nones
    task.evaluate(model, x, y)          a split's metrics, e.g. {"loss", "acc"} or {"r1_ab", ..., "rsum"}
    task.begin_epoch(epoch)             a note for the log when something changes (retrieval: warm-up ends)
    task.after_eval(rec)                checks on an evaluation record (retrieval: collapse)
    task.summary(history)               task-specific fields of the result row

``task.metric`` names the metric the study's verdict, the advisor and the report rank by
(``val_<metric>`` on validation data); ``METRICS`` says how to show it.

- **classification** (the default): soft targets, cross-entropy or BCE, accuracy. Its numbers and
  trial ids are what they were before the seam existed.
- **retrieval**: paired data (``data/paired.py``), a two-tower model, sum- or max-of-hinges on
  in-batch negatives (VSE++, ``retrieval/``), Recall@K both ways and R-sum in 1K folds.

Samplers declare the tasks they work for (``tasks``, default classification only): those that
need p(true class) or score candidates with cross-entropy are refused for retrieval.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import torch

from .data import DATASETS, PAIRED_DATASETS, Batch, TensorData, gather
from .errors import ConfigError, TrainwiseError
from .evaluate import evaluate
from .losses import LOSSES as CLASSIFICATION_LOSSES
from .losses import reduce_loss
from .retrieval import HINGE_LOSSES, LOSSES as HINGE_FNS, collapse_value, evaluate_retrieval

TASKS = ("classification", "retrieval")


@dataclass(frozen=True)
class Metric:
    key: str  # result rows hold val_<key>, test_<key>, train_<key>
    label: str  # a report column's name
    scale: float  # shown value = stored value x scale
    unit: str  # after a shown value ("%" or "")
    delta: float  # the verdict's default tie margin, in stored units
    top: float  # the best possible value: 1 (accuracy), 600 (six recalls in %)


METRICS = {"acc": Metric("acc", "acc %", 100.0, "%", 0.005, 1.0),  # 0.5 accuracy points
           "rsum": Metric("rsum", "R-sum", 1.0, "", 3.0, 600.0)}  # half a point per recall of the six
METRIC = {"classification": "acc", "retrieval": "rsum"}


# ---------------------------------------------------------------- loss specs and config checks

HINGE_DEFAULTS = {"margin": 0.2, "warmup_epochs": 0, "collapse": "warn"}


def hinge_spec(loss: str | dict) -> dict[str, Any]:
    """A hinge loss's full settings: name, margin α, warmup_epochs of sum-of-hinges, collapse action."""
    return {**HINGE_DEFAULTS, **({"name": loss} if isinstance(loss, str) else loss)}


def check_loss(v: Any) -> str | dict[str, Any]:
    """A loss: a name, or for hinge losses ``{name, margin, warmup_epochs, collapse}``; normalised to
    the bare name when every setting is at its default (one spelling, one trial id)."""
    name = v if isinstance(v, str) else v.get("name") if isinstance(v, dict) else None
    allowed = [*CLASSIFICATION_LOSSES, *HINGE_LOSSES]
    if name not in allowed:
        raise ValueError(f"unknown loss {v!r}; allowed: {', '.join(allowed)}")
    if isinstance(v, str):
        return v
    extra = set(v) - {"name", *(HINGE_DEFAULTS if name in HINGE_LOSSES else ())}
    if extra:
        raise ValueError(f"unknown setting(s) {sorted(extra)} for loss {name!r}; allowed: "
                         f"{', '.join(HINGE_DEFAULTS) if name in HINGE_LOSSES else 'none'}")
    if name not in HINGE_LOSSES:
        return name
    spec = hinge_spec(v)
    m, w, c = spec["margin"], spec["warmup_epochs"], spec["collapse"]
    if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 < m <= 2:
        raise ValueError(f"loss {name!r} margin {m!r}: give a number in (0, 2] (cosine similarities lie in [-1, 1])")
    if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 10_000:
        raise ValueError(f"loss {name!r} warmup_epochs {w!r}: give a whole number of epochs >= 0")
    if w and name != "max-of-hinges":
        raise ValueError("warmup_epochs (sum-of-hinges first) is for loss max-of-hinges; remove it")
    if c not in ("warn", "stop"):
        raise ValueError(f"loss {name!r} collapse {c!r}: give warn (record and go on) or stop (end the run)")
    spec["margin"] = float(m)
    return name if {k: spec[k] for k in HINGE_DEFAULTS} == HINGE_DEFAULTS else spec


def loss_name(loss: str | dict) -> str:
    return loss if isinstance(loss, str) else loss["name"]


def check_task(task: str, dataset, model_name: str, loss, sampler: dict, augment: list, train, robustness,
               target_accuracy) -> None:
    """Settings that do not fit the task: one ValueError line naming the setting and the fix."""
    from .models import MODELS
    from .sampling import SAMPLERS

    paired = dataset.name in PAIRED_DATASETS
    if task == "classification":
        if paired:
            raise ValueError(f"dataset {dataset.name!r} is paired (two views per item): set task: retrieval")
        if loss_name(loss) in HINGE_LOSSES:
            raise ValueError(f"loss {loss_name(loss)!r} is a retrieval loss: set task: retrieval, or loss: ce")
        if model_name == "two-tower":
            raise ValueError("model 'two-tower' embeds paired data: set task: retrieval")
        return
    if loss_name(loss) not in HINGE_LOSSES:
        raise ValueError(f"task retrieval trains with loss {' or '.join(HINGE_LOSSES)}, not "
                         f"{loss_name(loss)!r}; set loss: max-of-hinges")
    if not paired and dataset.name in DATASETS:  # a built-in labelled set
        raise ValueError(f"task retrieval needs a paired dataset (fashion-halves, synthetic-paired, or your "
                         f"arrays with a_*/b_* views), not {dataset.name!r}")
    if model_name in MODELS and model_name != "two-tower":
        raise ValueError(f"model {model_name!r} is a classifier; task retrieval uses model: two-tower "
                         "(or your own factory returning (batch, 2, dim) embeddings)")
    if "retrieval" not in getattr(SAMPLERS.get(sampler["name"]), "tasks", ("classification",)):
        ok = [n for n in SAMPLERS.names() if "retrieval" in getattr(SAMPLERS.get(n), "tasks", ())]
        raise ValueError(f"sampler {sampler['name']!r} needs p(true class) or class scores, classification "
                         f"only; task retrieval runs with {', '.join(ok)}")
    for what, on in (("augment", bool(augment)), ("train.tta_sum", bool(train.tta_sum)),
                     ("robustness", robustness is not None), ("target_accuracy", target_accuracy is not None),
                     ("dataset.limit_per_class", dataset.limit_per_class is not None)):
        if on:
            raise ValueError(f"{what} is for classification; remove it for task retrieval")


# ---------------------------------------------------------------- the tasks


class Classification:
    """Soft-target classification: what trainwise always did."""

    name = "classification"
    metric = "acc"
    val_keys = ("acc",)  # validation metrics a result row carries

    def __init__(self, cfg, data: TensorData):
        if data.views is not None:
            raise TrainwiseError(f"dataset {cfg.dataset.name!r} is paired (two views per item): set task: retrieval")
        self.loss_fn = CLASSIFICATION_LOSSES[loss_name(cfg.loss)]

    def batch(self, data: TensorData, sel) -> Batch:
        return gather(data.x_train, data.y_train, sel.idx, data.num_classes, sel.weight)

    def loss(self, logits: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        return self.loss_fn(logits, batch.y)

    reduce = staticmethod(reduce_loss)

    @torch.no_grad()
    def feedback(self, logits: torch.Tensor, batch: Batch):
        probs = logits.softmax(1)
        return probs.gather(1, batch.labels[:, None]).squeeze(1), probs

    def evaluate(self, model, x, y, batch_size: int) -> dict[str, float]:
        loss, acc = evaluate(model, x, y, batch_size)
        return {"loss": loss, "acc": acc}

    def begin_epoch(self, epoch: int) -> str | None:
        return None

    def after_eval(self, rec: dict) -> None:
        pass

    def summary(self, history: list[dict]) -> dict:
        return {}


class Retrieval:
    """Paired data, two-tower embeddings, hinge losses on in-batch negatives, Recall@K.

    With ``warmup_epochs: k`` (max-of-hinges only) the first k epochs train with sum-of-hinges,
    as VSE∞ does; evaluation records carry the loss in use (``loss_fn``). Collapse: when the
    epoch's training loss sits at the constant of identical embeddings (within 2%) and the test
    embeddings' spread is below ``COLLAPSE_SPREAD``, the run warns once (``collapse: warn``,
    ``collapsed`` in the result) or ends with an error (``collapse: stop``)."""

    name = "retrieval"
    metric = "rsum"
    val_keys = ("rsum", "r1_ab", "r1_ba")
    COLLAPSE_SPREAD = 0.05

    def __init__(self, cfg, data: TensorData):
        if data.views is None:
            raise TrainwiseError(f"task retrieval needs paired data; dataset {cfg.dataset.name!r} has one view per "
                                 "item (give arrays with a_train/b_train/a_test/b_test, or use fashion-halves)")
        spec = hinge_spec(cfg.loss)
        self.final_loss, self.margin = spec["name"], spec["margin"]
        self.warmup, self.on_collapse = spec["warmup_epochs"], spec["collapse"]
        self.batch_size = cfg.train.batch_size
        self.warned = False

    def loss_at(self, epoch: int) -> str:
        return "sum-of-hinges" if epoch < self.warmup else self.final_loss

    def batch(self, data: TensorData, sel) -> Batch:
        return gather(data.x_train, data.y_train, sel.idx, None, sel.weight)  # no soft targets: y is the group

    def loss(self, emb: torch.Tensor, batch: Batch, epoch: int) -> torch.Tensor:
        return HINGE_FNS[self.loss_at(epoch)](emb[:, 0], emb[:, 1], self.margin)

    @staticmethod
    def reduce(per_sample: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        """Summed over the batch, as the reference (``ContrastiveLoss`` returns a sum)."""
        return per_sample.sum() if weight is None else (per_sample * weight).sum()

    def feedback(self, emb: torch.Tensor, batch: Batch):
        return None, None

    def evaluate(self, model, x, y, batch_size: int) -> dict[str, float]:
        return evaluate_retrieval(model, x, y, batch_size)

    def begin_epoch(self, epoch: int) -> str | None:
        if self.warmup and epoch == self.warmup:
            return f"epoch {epoch}: warm-up over, loss sum-of-hinges -> {self.final_loss}"
        return None

    def summary(self, history: list[dict]) -> dict:
        return {"collapsed": any(r.get("collapsed", False) for r in history)}

    def after_eval(self, rec: dict) -> None:
        name = self.loss_at(rec["epoch"])
        rec["loss_fn"] = name
        flat = collapse_value(name, self.batch_size, self.margin)
        if abs(rec["train_loss"] - flat) <= 0.02 * flat and rec["test_spread"] < self.COLLAPSE_SPREAD:
            rec["collapsed"] = True
            if not self.warned:
                self.warned = True
                msg = (f"training collapsed at step {rec['step']}: the loss sits at {flat:g} (= the value of "
                       f"identical embeddings for {name}, batch {self.batch_size}, margin {self.margin:g}) and "
                       f"the embeddings' spread is {rec['test_spread']:.3g}; train the first epoch with "
                       "sum-of-hinges (loss warmup_epochs: 1) or lower optimizer.lr")
                if self.on_collapse == "stop":
                    raise TrainwiseError(msg)
                print(f"trainwise: warning: {msg}", file=sys.stderr, flush=True)


def make_task(cfg, data: TensorData):
    if cfg.task not in TASKS:
        raise ConfigError(f"unknown task {cfg.task!r}; allowed: {', '.join(TASKS)}")
    return (Retrieval if cfg.task == "retrieval" else Classification)(cfg, data)
