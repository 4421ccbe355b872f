"""Cascading Sum Augmentation (Simionescu, "Deep Learning Training Procedure Augmentations",
arXiv:2211.14395, ch. on sum augmentation; public code Tensor-Reloaded/Cascading-Sum-Augmentation).

Each training input is a weighted sum of K inputs, x~ = sum_k w_k x^(k), with target
sum_k w_k onehot(y^(k)), trained as multi-label with binary cross-entropy on logits (set
``loss: bce`` in the trial/regimen). Weights are 1/K (``weights: equal``) or drawn per input
from a symmetric Dirichlet (``weights: dirichlet``). Weights sum to 1, so summing the [0, 1]
inputs equals summing the normalised inputs the paper sums (the normaliser is affine).

Grouping (``grouping``): ``shuffle`` (default, our choice for budgeted training) makes the K
groups the batch itself (group 0, so each input keeps its sample's index, label and
importance weight) and K - 1 random permutations of it: each step forwards B inputs, as the
baseline does, and each sample appears once in every group. ``split`` is what the authors'
code does: the shuffled batch is split into K disjoint groups of B // K and the step forwards
B // K sums (each sample used once; index, label and weight are those of group 0).

K over training (``schedule``): ``fixed``; ``cascade`` (K0 -> K0/2 -> ... -> 1 at a validation
plateau or the stage's deadline, continuing from the best weights so far by validation
accuracy); ``gradual`` (see ``cascade.py``; this schedule owns the learning rate). Training
accuracy on mixed batches is the fraction of the top-K predictions that are among the K
source labels; it is written to the eval records as ``train_topk_acc`` with the current ``K``.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator

from ..accel import to_device
from ..data.loader import Batch
from ..errors import ConfigError
from ..registry import Settings
from .base import TRANSFORMS, Transform
from .cascade import cascade_ks, gradual_k, gradual_lr, group_weights, stage_deadlines
from .targets import dirichlet, smooth


def cascading_sum(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, perms: torch.Tensor):
    """x~_i = sum_k w_k x[perms[k, i]], same for y. ``w``: (K,) or (M, K); ``perms``: (K, M)
    indices into the batch (M = N for ``shuffle`` grouping, N // K for ``split``)."""
    k, m = perms.shape
    w = to_device(w, x.device).to(x.dtype).expand(m, k)
    xf = x.reshape(x.shape[0], -1)
    out_x = xf.index_select(0, perms[0]) * w[:, :1]
    out_y = y.index_select(0, perms[0]) * w[:, :1]
    for j in range(1, k):  # K is small (<= 8): a loop over groups, never over samples
        out_x = out_x.addcmul(xf.index_select(0, perms[j]), w[:, j:j + 1])
        out_y = out_y.addcmul(y.index_select(0, perms[j]), w[:, j:j + 1])
    return out_x.view(m, *x.shape[1:]), out_y


def topk_hits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per input, the fraction of its top-K predictions that are among its K source labels
    (``labels``: (K, N)); K = 1 is plain accuracy."""
    k = labels.shape[0]
    top = logits.topk(k, dim=1).indices  # (N, K)
    return (top[:, :, None] == labels.T[:, None, :]).any(-1).float().mean(1)


@TRANSFORMS.register("cascading-sum")
class CascadingSum(Transform):
    class Settings(Settings):
        k: int = Field(4, ge=1, le=64, description="K for schedule fixed; K0 for cascade and gradual")
        weights: Literal["equal", "dirichlet"] = "equal"
        dirichlet_alpha: float = Field(1.0, gt=0, le=1000)
        schedule: Literal["fixed", "cascade", "gradual"] = "fixed"
        switch: Literal["plateau", "fractions"] = Field(
            "plateau", description="cascade: halve K at a validation plateau (or the deadline), "
                                   "or only at the deadlines")
        patience: int = Field(2, ge=1, le=10_000, description="cascade plateau: evaluations without a new best val_acc")
        fractions: list[float] | None = Field(
            None, description="cascade: stage deadlines as fractions of the budget (default: equal split)")
        decay: float = Field(0.75, gt=0, le=1, description="gradual: fraction of the budget over which K falls")
        gamma: float = Field(0.5, gt=0, le=10, description="gradual: lr factor at each integer drop of K")
        grouping: Literal["shuffle", "split"] = Field(
            "shuffle", description="groups = batch + K-1 permutations (B sums), or K disjoint parts (B//K sums)")
        smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing of the source targets")

        @model_validator(mode="after")
        def _check(self):
            if self.fractions is not None:
                n = len(cascade_ks(self.k)) - 1
                f = self.fractions
                if len(f) != n or any(not 0 < a < 1 for a in f) or f != sorted(f):
                    raise ValueError(f"fractions must be {n} increasing values in (0, 1), one per "
                                     f"halving of K from {self.k}")
            return self

    def __init__(self, ctx, settings):
        super().__init__(ctx, settings)
        st = settings
        if st.schedule == "cascade" and st.switch == "plateau" and not getattr(ctx, "has_val", False):
            raise ConfigError("cascading-sum schedule cascade with switch plateau needs a validation split; "
                              "set dataset.val_fraction (e.g. 0.1) or switch: fractions")
        self.ks = cascade_ks(st.k) if st.schedule == "cascade" else [st.k]
        self.total = ctx.budget.total_steps  # the loop may re-plan it; on_step keeps it current
        self.stage = 0
        self.k_eff = float(self.ks[0])
        self.best_val = -1.0
        self.best_state: dict | None = None
        self.since_best = 0
        self.hits: torch.Tensor | float = 0.0  # summed on the device between evaluations (no per-step read)
        self.seen = 0
        self._labels: torch.Tensor | None = None

    # ---- hooks called by the training loop
    def deadline(self) -> int:
        """Last step (exclusive) of the current cascade stage under the current step plan."""
        return stage_deadlines(len(self.ks), self.total, self.settings.fractions)[self.stage]

    def on_step(self, step: int, total: int) -> None:
        self.total = total
        if self.settings.schedule == "gradual":
            self.k_eff = gradual_k(step, total, self.settings.k, self.settings.decay)
        else:
            self.k_eff = float(self.ks[self.stage])

    def adjust_lr(self, step: int, total: int, lr0: float, lr: float) -> float:
        st = self.settings
        if st.schedule != "gradual":
            return lr
        return gradual_lr(step, total, lr0, st.k, st.decay, st.gamma)

    def wants_eval(self, step: int, total: int) -> bool:
        return self.settings.schedule == "cascade" and step == self.deadline()

    def observe(self, logits: torch.Tensor, batch: Batch) -> None:
        if self._labels is not None:
            # float64 on the device: the same sums as adding Python floats, read once per evaluation
            self.hits = self.hits + topk_hits(logits.detach(), self._labels).sum().double()
            self.seen += len(batch)

    def on_eval(self, record: dict, model: torch.nn.Module) -> None:
        record["K"] = self.k_eff
        if self.seen:
            record["train_topk_acc"] = float(self.hits) / self.seen
        self.hits, self.seen = 0.0, 0
        if "val_acc" in record:
            if record["val_acc"] > self.best_val:
                self.best_val, self.since_best = record["val_acc"], 0
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                self.since_best += 1
        if self.settings.schedule != "cascade" or self.stage == len(self.ks) - 1:
            return
        plateau = self.settings.switch == "plateau" and self.since_best >= self.settings.patience
        if plateau or record["step"] >= self.deadline():
            self.stage += 1
            self.since_best = 0
            self.k_eff = float(self.ks[self.stage])
            if self.best_state is not None:  # continue from the best weights so far
                model.load_state_dict(self.best_state)
            record["K_next"] = self.ks[self.stage]

    # ---- the transform
    def __call__(self, batch: Batch, gen: torch.Generator) -> Batch:
        st = self.settings
        raw = group_weights(self.k_eff)
        k, n = len(raw), len(batch)
        if k == 1:
            self._labels = batch.labels[None]
            return batch.replace(y=smooth(batch.y, st.smoothing)) if st.smoothing else batch
        if st.grouping == "split":
            if n < k:  # a last, short batch of the epoch: sum as many groups as it has samples
                raw, k = raw[:n], n
            perms = torch.randperm(n, generator=gen)[: n - n % k].view(k, n // k)
        else:
            perms = torch.stack([torch.arange(n)] + [torch.randperm(n, generator=gen) for _ in range(k - 1)])
        m = perms.shape[1]
        w = raw if st.weights == "equal" else dirichlet(st.dirichlet_alpha, k, m, gen) * raw
        w = w / w.sum(-1, keepdim=True)
        perms = to_device(perms, batch.x.device)
        x, y = cascading_sum(batch.x, smooth(batch.y, st.smoothing), w, perms)
        self._labels = batch.labels[perms]
        if st.grouping == "split":  # the sums stand for group 0's samples
            first = perms[0]
            weight = None if batch.weight is None else batch.weight.to(first.device)[first]
            return batch.replace(x=x, y=y, labels=batch.labels[first], idx=batch.idx[first], weight=weight)
        return batch.replace(x=x, y=y)

    def state_dict(self) -> dict:
        sd = dict(stage=self.stage, k_eff=self.k_eff, best_val=self.best_val, since_best=self.since_best,
                  hits=float(self.hits), seen=self.seen)
        if self.best_state is not None:
            sd["best_state"] = self.best_state
        return sd

    def load_state_dict(self, sd: dict) -> None:
        if not sd:
            return
        self.stage, self.k_eff = int(sd["stage"]), float(sd["k_eff"])
        self.best_val, self.since_best = float(sd["best_val"]), int(sd["since_best"])
        self.hits, self.seen = float(sd["hits"]), int(sd["seen"])
        self.best_state = sd.get("best_state")
