"""The exhaustive batch-order probe: does the order of an epoch's batches matter?

From the curriculum chapter of Simionescu, "Deep Learning Training Procedure Augmentations"
(arXiv:2211.14395, "Perfect Ordering Approximation"; public code Tensor-Reloaded/Convergence,
``main.py`` ``run_all_batch_permutations``). A tiny subset of the *training* split (defaults as
the reference: two classes, 48 images, batch 8) is split once into k = 6 batches; for each of
the k! = 720 orders of those batches the same initial weights are loaded, a fresh optimizer
(reference: SGD lr 0.05, Nesterov momentum 0.9, weight decay 1e-4, constant lr) is built, the
RNG is reseeded, one epoch is trained without augmentation and the test loss and accuracy are
recorded (on the test images of the chosen classes).

This module is the core: the config, the subset, the splits, and ``run_chunk``, one executor
job training a range of orders after a prefix of earlier epochs. ``probe_runner.py`` drives the
jobs and stores the rows; ``probe_report.py`` writes ``probe.md``.

Choices where the reference is silent or differs:
- The split of epoch e is the batches of ``uniform``'s epoch e for the probe's seed on the
  subset, so the identity order of epoch 0 is exactly one epoch of a ``uniform`` run
  (``trainwise train`` with ``schedule: constant``) and a max-loss-delta run's epoch is one of
  the probed orders. Augmentation is off (the reference's MNIST transform had a random crop).
- Later epochs (``epochs`` > 1), as the reference: from the rows of epoch e − 1 keep the best
  and worst order (by test loss) and the first row of each of ``clusters`` k-means clusters of
  test loss; for each kept prefix, probe all orders of epoch e's split. A job trains its prefix
  once and restores the model, optimizer and RNG state after it for each order: the same
  numbers as retraining the prefix every time, k! times fewer prefix steps.
- The default model is a one-hidden-layer MLP (64 units), not a BatchNorm convnet like the
  reference's: after 6 steps of batch 8 the running BatchNorm statistics are far from the data's,
  so an eval-mode convnet predicts one class for most orders (``docs/results/order_probe.md``
  shows it); any model can be named.
- The training loss is the mean over batch of the soft cross-entropy, as ``train()``; the test
  loss is the mean over test images (the reference sums per-batch means).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import replace
from typing import Any

import torch
from pydantic import Field, field_validator, model_validator

from .. import interrupt
from ..budget import Budget
from ..data import TensorData, gather, load_dataset
from ..errors import ConfigError
from ..evaluate import evaluate
from ..losses import get_loss, reduce_loss
from ..models import build_model
from ..sampling import SAMPLERS, SamplerContext
from ..config import DatasetConfig, ModelConfig, OptimizerConfig, Seed, Strict, _check_spec

MAX_BATCHES = 8  # 8! = 40320 orders per prefix; 9! would be 362880


class ProbeConfig(Strict):
    """``trainwise probe-order CONFIG``: the subset, the model, the optimizer, the epochs."""

    name: str = Field("order_probe", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    dataset: DatasetConfig = DatasetConfig(name="fashion-mnist")
    model: ModelConfig = ModelConfig(name="mlp", hidden=64, depth=1)
    optimizer: OptimizerConfig = OptimizerConfig(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    classes: list[int] = Field([0, 6], min_length=2, max_length=100, description="class labels of the subset "
                               "(relabelled 0..C-1); default Fashion-MNIST T-shirt/top vs shirt")
    train_samples: int = Field(48, ge=2, le=4096, description="training images, an equal number per class")
    batch_size: int = Field(8, ge=1, le=4096)
    test_per_class: int | None = Field(None, ge=1, le=10**6, description="test images per class; "
                                       "default all test images of the classes")
    epochs: int = Field(1, ge=1, le=20, description="epochs probed (later ones continue from kept prefixes)")
    clusters: int = Field(12, ge=1, le=100, description="k-means clusters of test loss whose first "
                          "order is kept as a prefix for the next epoch (plus the best and worst)")
    seed: Seed = 0
    threads: int = Field(1, ge=1, le=1024, description="torch threads per job (pins the numbers)")
    chunk: int = Field(60, ge=1, le=100_000, description="orders per executor job")
    greedy: list[Any] = Field([{"name": "multi-attempt", "attempts": 8}, {"name": "max-loss-delta", "attempts": 8}],
                              max_length=16, description="samplers run on the same subset and marked on the plot")

    @field_validator("greedy")
    @classmethod
    def _greedy(cls, v: list) -> list:
        return [_check_spec(SAMPLERS, s) for s in v]

    @field_validator("dataset")
    @classmethod
    def _classification(cls, v: DatasetConfig) -> DatasetConfig:
        from ..data import PAIRED_DATASETS

        if v.name in PAIRED_DATASETS:
            raise ValueError(f"dataset {v.name!r} is paired (retrieval); the order probe trains classifiers: "
                             "pick a labelled dataset")
        return v

    @field_validator("classes")
    @classmethod
    def _classes(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or min(v) < 0:
            raise ValueError(f"classes {v} must be distinct labels >= 0")
        return v

    @model_validator(mode="after")
    def _sizes(self):
        if self.train_samples % len(self.classes):
            raise ValueError(f"train_samples {self.train_samples} must be a multiple of the {len(self.classes)} "
                             "classes (an equal number per class)")
        if self.train_samples % self.batch_size:
            raise ValueError(f"train_samples {self.train_samples} must be a multiple of batch_size "
                             f"{self.batch_size} (equal batches, as the reference)")
        if not 2 <= self.batches <= MAX_BATCHES:
            raise ValueError(f"train_samples / batch_size = {self.batches} batches; the probe needs 2 to "
                             f"{MAX_BATCHES} ({MAX_BATCHES}! orders): change train_samples or batch_size")
        return self

    @property
    def batches(self) -> int:
        return self.train_samples // self.batch_size

    @property
    def orders(self) -> int:
        return math.factorial(self.batches)


def order_of(order_id: int, k: int) -> tuple[int, ...]:
    """The ``order_id``-th permutation of range(k) in lexicographic order (0 = identity)."""
    items, out = list(range(k)), []
    for i in range(k, 0, -1):
        f = math.factorial(i - 1)
        out.append(items.pop(order_id // f))
        order_id %= f
    return tuple(out)


def probe_data(cfg: ProbeConfig, data: TensorData | None = None) -> TensorData:
    """The subset: ``train_samples / C`` images per class drawn (seeded) from the training split
    only, and the test images of the classes; labels relabelled 0..C-1 in ``classes`` order."""
    full = data if data is not None else load_dataset(cfg.dataset)  # x_train: never validation or test data
    bad = [c for c in cfg.classes if c >= full.num_classes]
    if bad:
        raise ConfigError(f"classes {bad} are not labels of dataset {cfg.dataset.name} ({full.num_classes} "
                          f"classes, 0..{full.num_classes - 1}); pick others")
    per = cfg.train_samples // len(cfg.classes)
    g = torch.Generator().manual_seed(cfg.seed)
    tr, te, ytr, yte = [], [], [], []
    for new, c in enumerate(cfg.classes):
        idx = (full.y_train == c).nonzero().flatten()
        if len(idx) < per:
            raise ConfigError(f"class {c} has {len(idx)} training images, fewer than the {per} asked for; "
                              "lower train_samples")
        tr.append(idx[torch.randperm(len(idx), generator=g)[:per]].sort().values)
        ytr.append(torch.full((per,), new, dtype=torch.long))
        t = (full.y_test == c).nonzero().flatten()
        if cfg.test_per_class is not None:
            t = t[torch.randperm(len(t), generator=g)[: cfg.test_per_class]].sort().values
        te.append(t)
        yte.append(torch.full((len(t),), new, dtype=torch.long))
    tr, te = torch.cat(tr), torch.cat(te)
    names = [full.classes[c] for c in cfg.classes] if full.classes else None
    return replace(full, name=f"{full.name}[{','.join(map(str, cfg.classes))}]",
                   x_train=full.x_train[tr].clone(), y_train=torch.cat(ytr), x_test=full.x_test[te].clone(),
                   y_test=torch.cat(yte), num_classes=len(cfg.classes), x_val=None, y_val=None, classes=names)


def splits(cfg: ProbeConfig, n: int, epochs: int) -> list[list[torch.Tensor]]:
    """The k batches of each epoch: those of ``uniform``'s epochs for the probe's seed."""
    ctx = SamplerContext(Budget(epochs, cfg.batch_size, n), cfg.seed, torch.zeros(n, dtype=torch.long),
                         torch.device("cpu"))
    uniform = SAMPLERS.build("uniform", ctx)
    out = []
    for e in range(epochs):
        uniform.begin_epoch(e)
        out.append([uniform.next_batch(i, None).idx for i in range(cfg.batches)])
    return out


def trial_config(cfg: ProbeConfig, sampler: str | dict, epochs: int) -> dict:
    """A ``train()`` config that runs ``sampler`` on the probe's subset like the probe trains an
    order: the same model, seed, optimizer and constant lr, batch B, no augmentation, an
    evaluation after every epoch."""
    return dict(dataset=cfg.dataset.model_copy(update={"val_fraction": 0.0}).model_dump(mode="json"),
                model=cfg.model.model_dump(mode="json"), optimizer=cfg.optimizer.model_dump(mode="json"),
                schedule={"name": "constant"}, sampler=sampler, seed=cfg.seed, regimen=str(
                    sampler if isinstance(sampler, str) else sampler["name"]),
                train={"epochs": epochs, "batch_size": cfg.batch_size, "eval_every": cfg.batches,
                       "threads": cfg.threads, "checkpoint_seconds": 0})


class Prober:
    """Trains orders of batches from fixed initial weights on the probe's subset."""

    def __init__(self, cfg: ProbeConfig, data: TensorData):
        from ..train import build_optimizer

        self.cfg, self.data = cfg, data
        self.build_optimizer = build_optimizer
        self.loss_fn = get_loss("ce")
        torch.manual_seed(cfg.seed)  # as train(): the same initial weights
        mean, std = data.channel_stats()
        self.model = build_model(cfg.model.name, data.input_shape, data.num_classes, mean, std,
                                 **cfg.model.settings)
        self.initial = {k: v.clone() for k, v in self.model.state_dict().items()}

    def train_batches(self, opt: torch.optim.Optimizer, batches: list[torch.Tensor]) -> None:
        """One epoch over ``batches`` in the given order: the loop's step, nothing else."""
        self.model.train()
        for idx in batches:
            b = gather(self.data.x_train, self.data.y_train, idx, self.data.num_classes)
            loss = reduce_loss(self.loss_fn(self.model(b.x), b.y), None)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def start(self, prefix: list[list[torch.Tensor]]) -> dict:
        """Initial weights, a fresh optimizer, the reseeded RNG, then the prefix epochs: the state
        each order of the next epoch starts from."""
        self.model.load_state_dict(self.initial)
        opt = self.build_optimizer(self.model, self.cfg.optimizer)
        torch.manual_seed(self.cfg.seed)
        for batches in prefix:
            self.train_batches(opt, batches)
        return dict(model={k: v.clone() for k, v in self.model.state_dict().items()},
                    opt=copy.deepcopy(opt.state_dict()), rng=torch.get_rng_state())

    def run(self, state: dict, batches: list[torch.Tensor]) -> tuple[float, float]:
        """Test loss and accuracy after one epoch over ``batches`` from ``state``."""
        self.model.load_state_dict(state["model"])
        opt = self.build_optimizer(self.model, self.cfg.optimizer)
        opt.load_state_dict(copy.deepcopy(state["opt"]))  # loading may alias the tensors it is given
        torch.set_rng_state(state["rng"])
        self.train_batches(opt, batches)
        return evaluate(self.model, self.data.x_test, self.data.y_test)


_CACHE: dict[str, tuple[Prober, list]] = {}  # per worker process: the subset, model and splits of a probe


def prober_for(cfg: ProbeConfig) -> tuple[Prober, list[list[torch.Tensor]]]:
    key = cfg.model_dump_json()
    if key not in _CACHE:
        _CACHE.clear()
        data = probe_data(cfg)
        _CACHE[key] = Prober(cfg, data), splits(cfg, data.n_train, cfg.epochs)
    return _CACHE[key]


def run_chunk(job: dict, run_dir: str | None = None) -> dict:
    """One executor job: orders ``job["orders"]`` = [start, stop) of epoch ``job["epoch"]`` after
    the prefix ``job["prefix"]`` (one order id per earlier epoch). Returns ``{"rows": [[order_id,
    test_loss, test_acc], ...]}``; stops between orders when a stop is requested."""
    t0, c0 = time.perf_counter(), time.process_time()
    cfg = ProbeConfig(**job["probe"])
    torch.set_num_threads(cfg.threads)
    prober, split = prober_for(cfg)
    k = cfg.batches
    prefix = [[split[e][i] for i in order_of(o, k)] for e, o in enumerate(job["prefix"])]
    state = prober.start(prefix)
    rows = []
    for oid in range(*job["orders"]):
        interrupt.check()
        loss, acc = prober.run(state, [split[job["epoch"]][i] for i in order_of(oid, k)])
        rows.append([oid, loss, acc])
    return {"rows": rows, "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
