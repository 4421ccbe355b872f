"""Config of a study grid (``StudyConfig``): regimens x budgets x seeds over common settings.

A regimen is a sampler, an augmentation chain, optionally a loss or a multisplit arm; each grid
point is one ``TrialConfig`` (``trainwise/config.py``). The trial-level names and the loaders are
re-exported here for code written against this module.
"""

from __future__ import annotations

from pydantic import Field, PrivateAttr, field_validator, model_validator

from ..config import (SEMANTICS, USER_DATASETS, AugmentSpec, BudgetFraction, Common, DatasetConfig, Label,
                      LossSpec, ModelConfig, MultiSplitSpec, Name, OptimizerConfig, SamplerSpec, ScheduleConfig, Seed, Spec,
                      Strict, TrainSettings, TrialConfig, _check_name)
from ..config_load import load_config, parse_config
from ..registry import brief


class RegimenConfig(Strict):
    name: Label | None = None
    sampler: SamplerSpec = "uniform"
    augment: AugmentSpec = []
    loss: LossSpec | None = None
    multisplit: MultiSplitSpec = None

    def label(self) -> str:
        if self.name:
            return self.name
        aug = "+".join(a["name"] for a in self.augment) or "none"
        ms = f"+multisplit(k={self.multisplit['k']},{self.multisplit['transfer']})" if self.multisplit else ""
        return f"{self.sampler['name']}{ms}/{aug}"


AUTO_VAL_FRACTION = 0.1


class StudyConfig(Common):
    """A grid: regimens (explicit, or samplers x augments) x budgets x seeds."""

    _auto_val: bool = PrivateAttr(False)

    name: Name = "study"
    seeds: list[Seed] = Field([0], max_length=1000)
    budgets: list[BudgetFraction] = Field([1.0], max_length=100)
    samplers: list[SamplerSpec] | None = Field(None, max_length=100)
    augments: list[AugmentSpec] | None = Field(None, max_length=100)
    regimens: list[RegimenConfig] | None = Field(None, max_length=1000)

    @field_validator("seeds", "budgets", "samplers", "augments", "regimens")
    @classmethod
    def _listed(cls, v: list | None) -> list | None:
        if v is not None and not v:
            raise ValueError("an empty list; give at least one, or leave the key out for the default")
        if v and not isinstance(v[0], (dict, list, RegimenConfig)):  # seeds, budgets, named samplers
            twice = sorted({x for x in v if v.count(x) > 1}, key=str)
            if twice:  # the same trial twice
                raise ValueError(f"{brief(twice)} appear(s) more than once; list each once")
        return v

    @model_validator(mode="after")
    def _grid(self):
        if self.regimens is not None and (self.samplers is not None or self.augments is not None):
            raise ValueError("give either 'regimens' or 'samplers'/'augments', not both")
        n = len(self.regimens or []) or len(self.samplers or [0]) * len(self.augments or [0])
        if n * len(self.budgets) * len(self.seeds) > 10_000:
            raise ValueError(f"the grid has {n} regimens x {len(self.budgets)} budgets x {len(self.seeds)} seeds, "
                             "more than 10000 trials; split it into smaller studies")
        labels = [r.label() for r in self.regimen_list()]
        twice = sorted({x for x in labels if labels.count(x) > 1})
        if twice:  # their trials would be merged into one row of the report
            raise ValueError(f"regimen names must be unique, {twice} appear more than once; give each "
                             "regimen its own name")
        if any(r.multisplit for r in self.regimens or []):
            if self.dataset.val_fraction:
                raise ValueError("dataset.val_fraction must be 0 with a multisplit regimen: "
                                 "its own val_fraction makes the splits")
            if self.robustness is not None:
                raise ValueError("robustness is not supported with a multisplit regimen; "
                                 "run the attacks in a separate study")
        for r in self.regimens or []:
            if r.multisplit:  # its label names the multisplit run's directories
                try:
                    _check_name(r.label())
                except ValueError:
                    raise ValueError(f"multisplit regimen {brief(r.label())} needs a 'name' that is a plain "
                                     "directory name (1 to 64 printable characters, no '/', '\\', '..' or "
                                     "leading '.'); name it") from None
        self._check_fit([r.augment for r in self.regimen_list()])
        for r in self.regimen_list():
            self._check_task(r.sampler, r.augment, r.loss or self.loss)
            if r.multisplit and self.task != "classification":
                raise ValueError("multisplit is for classification; remove it for task retrieval")
        return self

    @model_validator(mode="after")
    def _carve_validation(self):
        """A study picks its regimen on validation data (study/verdict.py), never on the test set:
        when the config gives no ``dataset.val_fraction``, hold out ``AUTO_VAL_FRACTION`` of the
        training set (stratified, seeded by ``split_seed``) and record it in the trials' configs.
        ``val_fraction: 0`` trains on everything and gives no verdict. Multisplit regimens make
        their own splits."""
        if "val_fraction" not in self.dataset.model_fields_set and not any(r.multisplit for r in self.regimens or []):
            self.dataset = self.dataset.model_copy(update={"val_fraction": AUTO_VAL_FRACTION})
            self._auto_val = True
        return self

    @property
    def auto_validation(self) -> bool:
        """Whether the validation split was carved because the config named none."""
        return self._auto_val

    def regimen_list(self) -> list[RegimenConfig]:
        if self.regimens is not None:
            return self.regimens
        samplers = self.samplers or ["uniform"]
        augments = self.augments or [[]]
        return [RegimenConfig(sampler=s, augment=a) for s in samplers for a in augments]

    def trials(self) -> list[TrialConfig]:
        common = self.model_dump(include=set(Common.model_fields))
        out = []
        for reg in self.regimen_list():
            for b in self.budgets:
                for seed in self.seeds:
                    d = dict(common, regimen=reg.label(), sampler=reg.sampler, augment=reg.augment,
                             budget=b, seed=seed)
                    if reg.loss:
                        d["loss"] = reg.loss
                    if reg.multisplit:
                        d["multisplit"] = reg.multisplit
                    out.append(TrialConfig(**d))
        return out


__all__ = ["StudyConfig", "RegimenConfig", "AUTO_VAL_FRACTION", "TrialConfig", "Common", "DatasetConfig",
           "ModelConfig", "OptimizerConfig", "ScheduleConfig", "TrainSettings", "Seed", "Spec", "Strict",
           "SEMANTICS", "USER_DATASETS", "load_config", "parse_config"]
