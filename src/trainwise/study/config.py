"""Config schemas for one training run (``TrialConfig``) and a study grid (``StudyConfig``).

Both are validated with pydantic; unknown keys are errors. ``load_config`` turns YAML
and validation problems into one ``ConfigError`` line naming the file, the key's
location and the allowed values.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from ..augment import TRANSFORMS
from ..budget import Budget
from ..errors import ConfigError
from ..models import MODELS, model_settings
from ..robust.config import RobustnessConfig
from ..sampling import SAMPLERS

# Bumped when the same settings start to mean a different computation, so that trials stored by
# an older trainwise are not taken for (or resumed as) trials of this one. 2: drop_last, exact E
# epochs, LR ending at final_lr, selective-backprop priming, mean BCE, importance off = uniform.
SEMANTICS = 2

Spec = Union[str, dict[str, Any]]


class Strict(BaseModel):
    # validate_default: defaults are normalised like given values, so a config's hash
    # survives a round trip through JSON (the executors rebuild configs from dicts).
    model_config = ConfigDict(extra="forbid", validate_default=True)


class SyntheticConfig(Strict):
    n_train: int = Field(2000, gt=0)
    n_test: int = Field(500, gt=0)
    num_classes: int = Field(10, gt=1)
    channels: int = Field(1, gt=0)
    size: int = Field(16, gt=3)
    noise: float = Field(0.3, ge=0)


class DatasetConfig(Strict):
    name: Literal["digits", "fashion-mnist", "cifar10", "cifar100", "synthetic"] = "digits"
    data_dir: str | None = None
    download: bool = False
    val_fraction: float = Field(0.0, ge=0, lt=1)
    limit_per_class: int | None = Field(None, gt=0)
    split_seed: int = 0
    synthetic: SyntheticConfig = SyntheticConfig()


class ModelConfig(BaseModel):
    """``name`` plus the model's own settings (e.g. ``width`` for cnn)."""

    model_config = ConfigDict(extra="allow")
    name: str = "cnn"

    @model_validator(mode="after")
    def _check(self):
        if self.name not in MODELS:
            raise ValueError(f"unknown model {self.name!r}; allowed: {', '.join(MODELS)}")
        extra = set(self.model_extra or {}) - set(model_settings(self.name))
        if extra:
            raise ValueError(
                f"unknown setting(s) {sorted(extra)} for model {self.name!r}; "
                f"allowed: {', '.join(model_settings(self.name)) or 'none'}"
            )
        return self

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class OptimizerConfig(Strict):
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    nesterov: bool = False


class ScheduleConfig(Strict):
    name: Literal["linear", "step", "cosine", "onecycle", "constant"] = "linear"
    final_lr: float = Field(1e-6, ge=0)
    warmup: float | None = Field(None, ge=0, lt=1)
    milestones: list[float] = [0.5, 0.75]
    gamma: float = Field(0.1, gt=0)

    def kwargs(self) -> dict[str, Any]:
        kw = self.model_dump(exclude={"name"})
        if kw["warmup"] is None:
            kw.pop("warmup")
        return kw


class TrainSettings(Strict):
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(128, gt=0)
    eval_every: int = Field(0, ge=0, description="steps between evaluations; 0 = once per full epoch")
    eval_batch_size: int = Field(1024, gt=0)
    checkpoint_every: int = Field(0, ge=0, description="steps between checkpoints; 0 = at each evaluation")
    device: str = "cpu"
    threads: int | None = Field(None, gt=0)
    budget_unit: Literal["steps", "backprop_samples", "forward_backward"] = Field(
        "steps", description="what the budget's T = E*floor(floor(b*N)/B) steps count: optimizer steps, or "
                             "T*B samples backpropagated, or T*B of forward+backward work (forward 1/3, "
                             "backward 2/3 per sample)")
    drop_last: bool = Field(True, description="drop an epoch's partial last batch (as the reference "
                                              "DataLoader); false: train on it")
    tta_sum: int = Field(0, ge=0, description="test-time sum augmentation: also report test accuracy "
                                              "with logits averaged over M mixes x/2 + x_train/2; 0 = off")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("cpu", "auto") and not v.startswith("cuda"):
            raise ValueError(f"unknown device {v!r}; allowed: cpu, cuda, cuda:N, auto")
        return v


def _check_spec(registry, spec: Spec) -> dict[str, Any]:
    try:
        return registry.validate(spec)
    except ConfigError as e:
        raise ValueError(str(e)) from None


def _check_augment(v: Spec | list[Spec]) -> list[dict[str, Any]]:
    specs = v if isinstance(v, list) else [v]
    return [_check_spec(TRANSFORMS, s) for s in specs]


def _check_budget(b: float) -> float:
    if not (0 < b <= 1):
        raise ValueError(f"budget {b} is outside (0, 1]: a budget is the fraction of the full schedule to run")
    return b


def _check_multisplit(v: dict[str, Any] | None) -> dict[str, Any] | None:
    """A ``multisplit:`` regimen's arm settings (k, transfer, every, ...; see multisplit/config.py)."""
    if v is None:
        return None
    from ..multisplit.config import ArmSettings

    try:
        return ArmSettings(name="regimen", **v).model_dump(exclude={"name"})
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(f for f in ArmSettings.model_fields if f != "name")
            raise ValueError(f"unknown multisplit setting {key!r}; allowed: {allowed}") from None
        raise ValueError(f"multisplit {key}: {err['msg'].removeprefix('Value error, ')}") from None


MultiSplitSpec = Annotated[Union[dict[str, Any], None], AfterValidator(_check_multisplit)]
BudgetFraction = Annotated[float, AfterValidator(_check_budget)]
SamplerSpec = Annotated[Spec, AfterValidator(lambda v: _check_spec(SAMPLERS, v))]
AugmentSpec = Annotated[Union[Spec, list[Spec]], AfterValidator(_check_augment)]


class Common(Strict):
    dataset: DatasetConfig = DatasetConfig()
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainSettings = TrainSettings()
    loss: Literal["ce", "bce"] = "ce"
    target_accuracy: float | None = Field(None, gt=0, le=1)
    robustness: RobustnessConfig | None = None  # attacks after training (robust/config.py)


class TrialConfig(Common):
    """One training run: everything in, one result row out. Serialisable (``model_dump``)."""

    regimen: str = "default"
    sampler: SamplerSpec = "uniform"
    augment: AugmentSpec = []
    budget: BudgetFraction = 1.0
    seed: int = 0
    multisplit: MultiSplitSpec = None  # K-split training with transfer instead of one run

    def make_budget(self, n_train: int) -> Budget:
        """This run's budget over ``n_train`` training samples (raises ConfigError if impossible)."""
        t = self.train
        return Budget(t.epochs, t.batch_size, n_train, self.budget, t.drop_last)

    def config_hash(self) -> str:
        """Hash of the settings that differ from their defaults: a new field added with a default
        leaves the hashes (and so the stored trials and checkpoints) of existing studies intact."""
        settings = self.model_dump(mode="json", exclude_defaults=True)
        blob = json.dumps({**settings, "semantics": SEMANTICS}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class RegimenConfig(Strict):
    name: str | None = None
    sampler: SamplerSpec = "uniform"
    augment: AugmentSpec = []
    loss: Literal["ce", "bce"] | None = None
    multisplit: MultiSplitSpec = None

    def label(self) -> str:
        if self.name:
            return self.name
        aug = "+".join(a["name"] for a in self.augment) or "none"
        ms = f"+multisplit(k={self.multisplit['k']},{self.multisplit['transfer']})" if self.multisplit else ""
        return f"{self.sampler['name']}{ms}/{aug}"


class StudyConfig(Common):
    """A grid: regimens (explicit, or samplers x augments) x budgets x seeds."""

    name: str = "study"
    seeds: list[int] = Field([0], min_length=1)
    budgets: list[BudgetFraction] = Field([1.0], min_length=1)
    samplers: list[SamplerSpec] | None = None
    augments: list[AugmentSpec] | None = None
    regimens: list[RegimenConfig] | None = None

    @model_validator(mode="after")
    def _grid(self):
        if self.regimens is not None and (self.samplers is not None or self.augments is not None):
            raise ValueError("give either 'regimens' or 'samplers'/'augments', not both")
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
        return self

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


# ---------------------------------------------------------------- loading and errors


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model at ``loc``, for 'unknown key' messages."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        while get_origin(ann) is not None and not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            args = [a for a in get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
            if not args:
                return []
            ann = args[0]
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def format_validation_error(e: ValidationError, model: type[BaseModel], where: str) -> str:
    err = e.errors()[0]
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"{where}: unknown key '{key}'; allowed here: {', '.join(allowed)}"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "literal_error":
        msg = f"got {err['input']!r}; {msg.lower()}"
    return f"{where}: '{key}': {msg}"


def parse_config(data: Any, model: type[BaseModel], where: str = "config"):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        return model(**data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, model, where)) from None


def load_config(path: str | Path, model: type[BaseModel]):
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found; pass the path of a YAML config")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}; fix the syntax") from None
    return parse_config(data, model, str(path))
