"""Config for multi-split training: a comparison of arms x seeds (one arm's settings, ``ArmSettings``,
live with the trial config in ``trainwise/config.py``: a study regimen may be an arm).

A ``multisplit`` config is a trial's common settings (dataset, model, optimizer, schedule,
train), one sampler/augment/budget, a list of ``seeds`` and a list of ``arms``. The default
arms are the comparison of Zhang et al. (arXiv:2007.01016) against its two baselines:
``conventional`` (one split, best-validation checkpoint), ``independent`` (K splits, no
transfer, best of K) and ``transfer`` (K splits with greedy transfer every epoch). ``pairs``
names the (arm, baseline) comparisons reported as paired differences over seeds.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from ..config import ArmSettings, Common, Name, Seed, Spec, _check_augment, _check_budget, _check_spec
from ..sampling import SAMPLERS
from ..data import PAIRED_DATASETS


DEFAULT_ARMS = [
    ArmSettings(name="conventional", k=1, transfer="none"),
    ArmSettings(name="independent", k=4, transfer="none"),
    ArmSettings(name="transfer", k=4, transfer="greedy"),
]


class MultiSplitConfig(Common):
    """``trainwise multisplit CONFIG``: every arm at every seed, at the same total budget."""

    name: Name = "multisplit"
    sampler: Spec = "uniform"
    augment: Spec | list[Spec] = []
    budget: float = 1.0
    seeds: list[Seed] = Field([0], min_length=1, max_length=1000)
    arms: list[ArmSettings] = Field(DEFAULT_ARMS, min_length=1, max_length=100)
    pairs: list[tuple[str, str]] | None = Field(
        None, description="(arm, baseline) pairs compared seed by seed; default: each transfer arm against "
                          "the no-transfer arm with the same k, val_fraction, every, init and split_budget")

    _sampler = field_validator("sampler")(classmethod(lambda cls, v: _check_spec(SAMPLERS, v)))
    _augment = field_validator("augment")(classmethod(lambda cls, v: _check_augment(v)))
    _budget = field_validator("budget")(classmethod(lambda cls, v: _check_budget(v)))

    @model_validator(mode="after")
    def _unique(self):
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be unique, got {names}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be unique, got {self.seeds}; list each once")
        for pair in self.pairs or []:
            if unknown := [a for a in pair if a not in names]:
                raise ValueError(f"pairs: unknown arm(s) {unknown}; arms are {names}")
        if getattr(self, "robustness", None) is not None:
            raise ValueError("robustness is not supported by multisplit; remove the key (attack the "
                             "output model.pt separately)")
        if self.dataset.val_fraction:
            raise ValueError("dataset.val_fraction must be 0 here: each arm's val_fraction makes the splits")
        if self.task != "classification" or self.dataset.name in PAIRED_DATASETS:
            raise ValueError("multisplit is for classification (task: retrieval and paired datasets are not "
                             "supported); pick a labelled dataset")
        self._check_fit([self.augment])
        return self

    def paired_arms(self) -> list[tuple[str, str]]:
        if self.pairs is not None:
            return list(self.pairs)
        same = lambda a, b: all(getattr(a, f) == getattr(b, f)  # noqa: E731
                                for f in ("k", "val_fraction", "every", "init", "split_budget"))
        return [(a.name, b.name) for a in self.arms if a.transfer != "none"
                for b in self.arms if b.transfer == "none" and same(a, b)]


__all__ = ["ArmSettings", "MultiSplitConfig", "DEFAULT_ARMS"]
