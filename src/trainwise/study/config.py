"""Config schemas for one training run (``TrialConfig``) and a study grid (``StudyConfig``).

Both are validated with pydantic; unknown keys are errors, and every number has a type and
bounds (NaN and infinity are refused). ``load_config`` turns encoding, YAML (duplicate keys
included), ``--set`` override and validation problems into one ``ConfigError`` line naming the
file, the key's location and the allowed values.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence, Union, get_args

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator,
                      model_validator)

from ..augment import TRANSFORMS
from ..budget import Budget
from ..errors import ConfigError
from ..models import MODELS, check_model_settings, model_settings
from ..registry import brief
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
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


def _check_name(v: str) -> str:
    """A study's name is its default directory (studies/<name>): a plain, short directory name."""
    if not 0 < len(v) <= 64 or not v.isprintable() or "/" in v or "\\" in v or ".." in v or v.startswith("."):
        raise ValueError(f"name {brief(v)} must be 1 to 64 printable characters without '/', '\\', '..' "
                         "or a leading '.'; rename it")
    return v


def _check_label(v: str) -> str:
    """A regimen's name labels report rows and log lines (it may hold '/', as the default labels do)."""
    if not v or not v.isprintable():
        raise ValueError(f"regimen name {brief(v)} must be non-empty and printable (no control characters); "
                         "rename it")
    return v


Name = Annotated[str, AfterValidator(_check_name)]
Label = Annotated[str, Field(max_length=64), AfterValidator(_check_label)]  # a regimen's given name
Seed = Annotated[int, Field(ge=0, lt=2**32, description="a random seed in [0, 2^32)")]


class SyntheticConfig(Strict):
    n_train: int = Field(2000, gt=0, le=10**7)
    n_test: int = Field(500, gt=0, le=10**7)
    num_classes: int = Field(10, gt=1, le=10_000)
    channels: int = Field(1, gt=0, le=64)
    size: int = Field(16, gt=3, le=1024)
    noise: float = Field(0.3, ge=0, le=100)

    @model_validator(mode="after")
    def _fits(self):
        gb = (self.n_train + self.n_test) * self.channels * self.size**2 * 4 / 1e9
        if gb > 2:
            raise ValueError(f"synthetic data of {gb:.0f} GB is too large (at most 2 GB); lower n_train, "
                             "n_test, channels or size")
        return self


# image side of the built-in datasets, for settings that must fit inside an image (crop padding)
IMAGE_SIZE = {"digits": 8, "fashion-mnist": 28, "cifar10": 32, "cifar100": 32}


USER_DATASETS = ("image-folder", "arrays", "csv", "python")


class DatasetConfig(Strict):
    """A built-in dataset, or the user's own: ``image-folder`` / ``arrays`` / ``csv`` (``path``) or
    ``python`` (``function``). See data/__init__.py and README "Your data"."""

    name: Literal["digits", "fashion-mnist", "cifar10", "cifar100", "synthetic",
                  "image-folder", "arrays", "csv", "python"] = "digits"
    data_dir: str | None = Field(None, min_length=1, max_length=4096)
    download: bool = False
    val_fraction: float = Field(0.0, ge=0, lt=1)
    limit_per_class: int | None = Field(None, gt=0, le=10**7)
    split_seed: Seed = 0
    synthetic: SyntheticConfig = SyntheticConfig()
    path: str | None = Field(None, min_length=1, max_length=4096, description=(
        "image-folder: a root with train/<class>/ and test/<class>/ (or one root of class folders plus "
        "test_fraction); arrays: an .npz file or a folder of .npy files; csv: a .csv file"))
    function: str | None = Field(None, min_length=3, max_length=4096, description=(
        "python: 'package.module:function' or 'path/to/file.py:function' returning (train, test): "
        "tensors/arrays (x, y) pairs or map-style torch Datasets"))
    test_fraction: float | None = Field(None, gt=0, lt=1, description=(
        "hold out this stratified, seeded (split_seed) fraction as the test set when the data has none"))
    resize: tuple[int, int] | None = Field(None, description="image-folder: resize every image to [H, W]")
    channels: Literal[1, 3] | None = Field(None, description="image-folder: 1 (grayscale) or 3 (RGB); "
                                           "default: 3 unless every image is grayscale")
    label_column: str | None = Field(None, min_length=1, max_length=256, description="csv: the label's column")
    feature_columns: list[str] | None = Field(None, min_length=1, description="csv: the feature columns "
                                              "(default: every other column)")
    storage: Literal["auto", "memory", "mmap"] = Field("auto", description=(
        "memory: arrays in RAM; mmap: inputs in a memory-mapped uint8/float file, batches gathered by "
        "index; auto: mmap when the inputs would take more than a quarter of RAM"))
    fingerprint: str | None = Field(None, max_length=64, description=(
        "content hash of a user dataset, filled in by trainwise when a study or run starts (part of "
        "the trial id: results never describe other data); leave it out"))

    @field_validator("data_dir", "path", "function")
    @classmethod
    def _dir(cls, v: str | None) -> str | None:
        if v is not None and not v.isprintable():
            raise ValueError(f"path {brief(v)} holds a NUL or control character; give a plain path")
        return v

    @field_validator("resize")
    @classmethod
    def _resize(cls, v):
        if v is not None and not all(1 <= s <= 4096 for s in v):
            raise ValueError(f"resize {list(v)} must be [H, W] with 1 <= H, W <= 4096")
        return v

    @model_validator(mode="after")
    def _needs(self):
        need = {"image-folder": "path", "arrays": "path", "csv": "path", "python": "function"}.get(self.name)
        if need and getattr(self, need) is None:
            raise ValueError(f"dataset {self.name!r} needs dataset.{need}")
        if self.name == "csv" and self.label_column is None:
            raise ValueError("dataset 'csv' needs dataset.label_column (the column holding the class)")
        return self

    @property
    def image_size(self) -> int | None:
        """The built-in datasets' image side (None for user datasets: known only once loaded)."""
        if self.name in USER_DATASETS:
            return self.resize[0] if self.resize else None
        return self.synthetic.size if self.name == "synthetic" else IMAGE_SIZE[self.name]


class ModelConfig(BaseModel):
    """``name`` plus the model's own settings (e.g. ``width`` for cnn). ``name`` is a built-in model
    or your own factory, ``"package.module:factory"`` or ``"path/to/file.py:factory"`` (relative to
    the working directory), called as ``factory(input_shape, num_classes, **settings)``; its
    settings are checked against its signature and passed through as given."""

    model_config = ConfigDict(extra="allow")
    name: str = "cnn"
    fingerprint: str | None = Field(None, max_length=64, description=(
        "a user factory's source hash (its .py file, or its module's file), filled in by trainwise when "
        "the config is loaded (part of the trial id: results never describe other code); leave it out"))

    @model_validator(mode="after")
    def _check(self):
        from ..models.user import check_user_model, is_user_model

        if is_user_model(self.name):
            try:
                fingerprint = check_user_model(self.name, self.settings)
            except ConfigError as e:
                raise ValueError(str(e)) from None
            if self.fingerprint is not None and self.fingerprint != fingerprint:
                raise ValueError(f"model {self.name!r} changed since this config was made (fingerprint "
                                 f"{brief(self.fingerprint)}, now {fingerprint}); leave model.fingerprint out "
                                 "to use the current code")
            self.fingerprint = fingerprint
            return self
        if self.fingerprint is not None:
            raise ValueError("model.fingerprint is filled in by trainwise for a user factory "
                             "('package.module:factory' or 'path/to/file.py:factory'); leave it out")
        if self.name not in MODELS:
            raise ValueError(f"unknown model {brief(self.name)}; allowed: {', '.join(MODELS)}, or your own "
                             "factory as 'package.module:factory' or 'path/to/file.py:factory'")
        extra = set(self.model_extra or {}) - set(model_settings(self.name))
        if extra:
            raise ValueError(
                f"unknown setting(s) {brief(sorted(map(str, extra)))} for model {self.name!r}; "
                f"allowed: {', '.join(model_settings(self.name)) or 'none'}"
            )
        try:
            check_model_settings(self.name, self.settings)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return self

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class OptimizerConfig(Strict):
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0)  # finite; a huge lr diverges, a clean failed trial (DivergedError)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0, le=10)
    nesterov: bool = False

    @model_validator(mode="after")
    def _nesterov(self):
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ValueError("nesterov needs name: sgd and momentum > 0; set nesterov: false or a momentum")
        return self


class ScheduleConfig(Strict):
    name: Literal["linear", "step", "cosine", "onecycle", "constant"] = "linear"
    final_lr: float = Field(1e-6, ge=0, le=100)
    warmup: float | None = Field(None, ge=0, lt=1)
    milestones: list[Annotated[float, Field(ge=0, le=1)]] = Field([0.5, 0.75], max_length=100,
                                                                   description="fractions of the budget")
    gamma: float = Field(0.1, gt=0, le=10)

    def kwargs(self) -> dict[str, Any]:
        kw = self.model_dump(exclude={"name"})
        if kw["warmup"] is None:
            kw.pop("warmup")
        return kw


class TrainSettings(Strict):
    epochs: int = Field(10, gt=0, le=100_000)
    batch_size: int = Field(128, gt=0, le=65_536)
    eval_every: int = Field(0, ge=0, le=10**9, description="steps between evaluations; 0 = once per full epoch")
    eval_batch_size: int = Field(1024, gt=0, le=65_536)
    checkpoint_every: int = Field(0, ge=0, le=10**9, description="steps between checkpoints; 0 = at each evaluation")
    checkpoint_seconds: float = Field(60.0, ge=0, le=10**6, description="also checkpoint when this many seconds of "
                                      "training passed since the last checkpoint; 0 = off")
    device: str = Field("cpu", description="cpu, cuda, cuda:N, or auto (cuda when there is one); README 'On a GPU'")
    threads: int | None = Field(None, gt=0, le=1024)
    budget_unit: Literal["steps", "backprop_samples", "forward_backward"] = Field(
        "steps", description="what the budget's T = E*floor(floor(b*N)/B) steps count: optimizer steps, or "
                             "T*B samples backpropagated, or T*B of forward+backward work (forward 1/3, "
                             "backward 2/3 per sample)")
    drop_last: bool = Field(True, description="drop an epoch's partial last batch (as the reference "
                                              "DataLoader); false: train on it")
    tta_sum: int = Field(0, ge=0, le=1000, description="test-time sum augmentation: also report test "
                         "accuracy with logits averaged over M mixes x/2 + x_train/2; 0 = off")
    # GPU speed settings (trainwise/accel.py); at their defaults they stay out of the trial ids
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="forward passes under autocast in bf16 or fp16 (fp16: CUDA only, with a gradient "
                            "scaler); weights, gradients and losses stay float32")
    channels_last: bool = Field(False, description="4-D weights and inputs in channels-last (NHWC) memory format")
    compile: Literal[False, "default", "reduce-overhead"] = Field(
        False, description="torch.compile the model (reduce-overhead: with CUDA graphs); a failure to compile "
                           "warns once and trains eagerly")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"cpu|auto|cuda(:\d{1,3})?", v):
            raise ValueError(f"unknown device {brief(v)}; allowed: cpu, cuda, cuda:N, auto")
        return v

    @field_validator("compile", mode="before")
    @classmethod
    def _compile(cls, v: Any) -> Any:
        return "default" if v is True else v  # compile: true means the default mode


def _check_spec(registry, spec: Spec) -> dict[str, Any]:
    try:
        return registry.validate(spec)
    except ConfigError as e:
        raise ValueError(str(e)) from None


def _check_augment(v: Spec | list[Spec]) -> list[dict[str, Any]]:
    specs = v if isinstance(v, list) else [v]
    if len(specs) > 16:
        raise ValueError(f"{len(specs)} augmentations in one chain; at most 16")
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
        if "name" in v:  # the regimen's name names the arm
            raise ValueError("unknown multisplit setting 'name'; name the regimen instead")
        return ArmSettings.model_validate({**v, "name": "regimen"}).model_dump(exclude={"name"})
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(f for f in ArmSettings.model_fields if f != "name")
            raise ValueError(f"unknown multisplit setting {brief(key)}; allowed: {allowed}") from None
        msg = err["msg"].removeprefix("Value error, ").replace("arm 'regimen': ", "")
        raise ValueError(f"multisplit {key}: {msg}" if key else f"multisplit: {msg}") from None


MultiSplitSpec = Annotated[Union[dict[str, Any], None], AfterValidator(_check_multisplit)]
BudgetFraction = Annotated[float, AfterValidator(_check_budget)]
SamplerSpec = Annotated[Spec, AfterValidator(lambda v: _check_spec(SAMPLERS, v))]
AugmentSpec = Annotated[Union[Spec, list[Spec]], AfterValidator(_check_augment)]


class Common(Strict):
    """Settings shared by a trial and a study grid."""

    def with_fingerprint(self, data):
        """This config with ``dataset.fingerprint`` set to the content hash of ``data`` (the loaded
        dataset) when it is a user dataset; built-in datasets are pinned by their checksums."""
        from ..data.fingerprint import fingerprint

        if self.dataset.name not in USER_DATASETS:
            return self
        fp = fingerprint(data)
        if self.dataset.fingerprint not in (None, fp):
            from ..errors import DataError

            raise DataError(f"dataset {self.dataset.path or self.dataset.function} changed since this run "
                            f"started (fingerprint {self.dataset.fingerprint}, now {fp}); rerun the study: "
                            "new trials will start for the new data")
        return self.model_copy(update={"dataset": self.dataset.model_copy(update={"fingerprint": fp})})

    dataset: DatasetConfig = DatasetConfig()
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainSettings = TrainSettings()
    loss: Literal["ce", "bce"] = "ce"
    target_accuracy: float | None = Field(None, gt=0, le=1)
    robustness: RobustnessConfig | None = None  # attacks after training (robust/config.py)

    def _check_fit(self, chains: list[list[dict[str, Any]]]) -> None:
        """Augmentation settings that must fit the dataset's images (crop padding below the side)."""
        size = self.dataset.image_size
        if size is None:  # a user dataset: preflight checks the transforms on real images
            return
        for chain in chains:
            for a in chain:
                if a.get("pad", 0) >= size:
                    raise ValueError(f"augmentation {a['name']!r} pad {a['pad']} must be below the image size "
                                     f"{size} of dataset {self.dataset.name}; lower the pad")


class TrialConfig(Common):
    """One training run: everything in, one result row out. Serialisable (``model_dump``)."""

    regimen: Annotated[str, Field(max_length=1000), AfterValidator(_check_label)] = "default"
    sampler: SamplerSpec = "uniform"
    augment: AugmentSpec = []
    budget: BudgetFraction = 1.0
    seed: Seed = 0
    multisplit: MultiSplitSpec = None  # K-split training with transfer instead of one run

    @model_validator(mode="after")
    def _fit(self):
        self._check_fit([self.augment])
        return self

    def make_budget(self, n_train: int) -> Budget:
        """This run's budget over ``n_train`` training samples (raises ConfigError if impossible)."""
        t = self.train
        return Budget(t.epochs, t.batch_size, n_train, self.budget, t.drop_last)

    def config_hash(self) -> str:
        """Hash of the settings that differ from their defaults: a new field added with a default
        leaves the hashes (and so the stored trials and checkpoints) of existing studies intact."""
        settings = self.model_dump(mode="json", exclude_defaults=True)
        ds = settings.get("dataset", {})
        ds.pop("storage", None)  # memory or mmap: the same numbers
        if ds.get("fingerprint"):  # the content names the data; where it lies does not matter
            for k in ("path", "function", "data_dir"):
                ds.pop(k, None)
        blob = json.dumps({**settings, "semantics": SEMANTICS}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class RegimenConfig(Strict):
    name: Label | None = None
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


# ---------------------------------------------------------------- loading and errors


def _inner_model(ann: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``list[RegimenConfig] | None`` -> RegimenConfig)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    return next(filter(None, map(_inner_model, get_args(ann))), None)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model at ``loc``, for 'unknown key' messages."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = field and _inner_model(field.annotation)
        if model is None:
            return []
    return list(model.model_fields)


# parts pydantic adds to an error's location for the member of a union that failed
_UNION_PART = re.compile(r"(str|int|float|bool|list|dict|union|nullable|function-\w+)(\[.*\])?")


def _one_line(s: str, limit: int = 0) -> str:
    """``s`` with control characters escaped (a message stays one line), cut to ``limit`` if given."""
    s = "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)
    return s[:limit - 3] + "..." if limit and len(s) > limit else s


def format_validation_error(e: ValidationError, model: type[BaseModel], where: str) -> str:
    err = e.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _UNION_PART.fullmatch(p)))
    key = _one_line(".".join(str(p) for p in loc), 120) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"{where}: unknown key '{key}'; allowed here: {', '.join(allowed)}"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "literal_error":
        msg = f"got {brief(err['input'])}; {msg.lower()}"
    return f"{where}: '{key}': {msg}"


def parse_config(data: Any, model: type[BaseModel], where: str = "config"):
    if not isinstance(data, dict):
        what = "is empty" if data is None else f"holds a value of type {type(data).__name__} at the top level"
        raise ConfigError(_one_line(f"{where} {what}; write a YAML mapping of settings (key: value lines)"))
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_one_line(format_validation_error(e, model, where))) from None


class DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *anchor' merges, they may repeat keys
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                twice = key in first
            except TypeError:  # an unhashable key: SafeLoader reports it
                continue
            if twice:
                line = key_node.start_mark.line + 1
                raise DuplicateKeyError(None, None, f"duplicate key {brief(key)} at line {line} (first given at "
                                        f"line {first[key]})", key_node.start_mark)
            first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, where: str) -> Any:
    """``text`` as plain YAML data (a SafeLoader that refuses duplicate keys); problems are one
    ConfigError line starting with ``where``."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader)
    except DuplicateKeyError as e:
        raise ConfigError(_one_line(f"{where}: {e.problem}; keep one of them")) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(_one_line(f"{where}: YAML syntax error{at}: {problem}; fix the syntax")) from None
    except (RecursionError, ValueError, OverflowError) as e:  # nesting too deep, 5000-digit numbers
        raise ConfigError(_one_line(f"{where}: cannot read the YAML ({type(e).__name__}: "
                                    f"{str(e).split(';')[0][:100]}); simplify the config")) from None


def apply_override(data: dict, item: str) -> None:
    """Apply one ``--set key=value`` to the raw config mapping: ``key`` is a dotted path (missing
    mappings are created, integer parts index lists), ``value`` is parsed as YAML."""
    key, eq, text = item.partition("=")
    parts = key.strip().split(".")
    if not eq or not all(parts):
        raise ConfigError(_one_line(f"--set {item!r}: expected key=value with a dotted key, e.g. "
                                    "--set train.epochs=5", 300))
    value = parse_yaml(text, _one_line(f"--set {item!r}", 200))
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        at = ".".join(parts[:i]) or "the top level"
        if isinstance(node, list):
            if not (part.isdigit() and int(part) < len(node)):
                raise ConfigError(_one_line(f"--set {item!r}: {at} is a list of {len(node)}; index it with "
                                            f"0 to {len(node) - 1}", 300))
            part = int(part)
        elif not isinstance(node, dict):
            raise ConfigError(_one_line(f"--set {item!r}: {at} is a {type(node).__name__}, not a mapping; "
                                        "set it as a whole", 300))
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = {}
            node = node[part]


MAX_CONFIG_BYTES = 1_000_000


def load_config(path: str | Path, model: type[BaseModel], overrides: Sequence[str] = ()):
    """Read, override (``--set key=value``, see ``apply_override``) and validate a YAML config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(_one_line(f"config file {path} not found; pass the path of a YAML config"))
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(_one_line(f"cannot read config file {path} ({e.strerror or e}); check its "
                                    "permissions")) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(_one_line(f"{path} is {len(raw)} bytes, too large for a config (at most "
                                    f"{MAX_CONFIG_BYTES}); pass a YAML config file"))
    try:
        text = raw.decode("utf-8-sig")
        if (nul := text.find("\0")) >= 0:
            raise UnicodeError(f"a NUL byte at offset {nul}")
    except UnicodeError as e:
        why = e.reason if isinstance(e, UnicodeDecodeError) else e
        raise ConfigError(_one_line(f"{path} is not UTF-8 text ({why}); save the config as UTF-8 YAML "
                                    "(not UTF-16 or a binary file)")) from None
    data = parse_yaml(text, str(path))
    if overrides and data is None:
        data = {}  # an empty file: the overrides are the whole config
    if isinstance(data, dict):
        for item in overrides:
            apply_override(data, item)
    return parse_config(data, model, f"{path} with --set" if overrides else str(path))
