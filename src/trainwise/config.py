"""The config of one training run (``TrialConfig``) and its parts; what ``train.py`` reads.

Validated with pydantic; unknown keys are errors, and every number has a type and bounds (NaN
and infinity are refused). A study's grid (``study/config.py``) and a multi-split comparison
(``multisplit/config.py``) build on ``Common``. Reading YAML files and ``--set`` overrides into
one ``ConfigError`` line is ``config_load.py``'s job.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .augment import TRANSFORMS
from .budget import Budget
from .errors import ConfigError
from .models import MODELS, check_model_settings, model_settings
from .registry import brief
from .robust.config import RobustnessConfig
from .sampling import SAMPLERS
from .tasks import check_loss, check_task

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
    positives: int = Field(1, ge=1, le=100, description="synthetic-paired: pairs (B views) per group, as "
                           "several captions per image")

    @model_validator(mode="after")
    def _fits(self):
        gb = (self.n_train + self.n_test) * self.channels * self.size**2 * 4 / 1e9
        if gb > 2:
            raise ValueError(f"synthetic data of {gb:.0f} GB is too large (at most 2 GB); lower n_train, "
                             "n_test, channels or size")
        return self


# image side of the built-in datasets, for settings that must fit inside an image (crop padding)
IMAGE_SIZE = {"digits": 8, "fashion-mnist": 28, "cifar10": 32, "cifar100": 32, "fashion-halves": 28}


USER_DATASETS = ("image-folder", "arrays", "csv", "python")


class DatasetConfig(Strict):
    """A built-in dataset, or the user's own: ``image-folder`` / ``arrays`` / ``csv`` (``path``) or
    ``python`` (``function``). See data/__init__.py and README "Your data"."""

    name: Literal["digits", "fashion-mnist", "cifar10", "cifar100", "synthetic", "fashion-halves",
                  "synthetic-paired", "image-folder", "arrays", "csv", "python"] = "digits"
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
        """The built-in datasets' image side (None for user datasets, known only once loaded, and for
        synthetic-paired features)."""
        if self.name in USER_DATASETS:
            return self.resize[0] if self.resize else None
        return self.synthetic.size if self.name == "synthetic" else IMAGE_SIZE.get(self.name)


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
        from .models.user import check_user_model, is_user_model

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
    grad_clip: float | None = Field(None, gt=0, le=1e6, description="clip the gradient's global L2 norm to this "
                                    "before each step (VSE++ uses 2); default: no clipping")

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


class GradientVarianceSettings(Strict):
    """The gradient-variance meter (trainwise/gradstats/meter.py): every K steps, T gradients each of the
    sampler's batches and of uniform ones at B and 2B, at fixed weights."""

    every: int = Field(..., ge=1, le=10**9, description="K: optimizer steps between measurements")
    draws: int = Field(10, ge=2, le=100_000, description="T: mini-batch gradients per estimator")


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
    gradient_variance: GradientVarianceSettings | None = Field(
        None, description="measure the mini-batch gradient's variance every K steps (sampler vs uniform at B "
                          "and 2B); off by default, and then out of the trial ids")
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


class ArmSettings(Strict):
    """One way of training: K splits, how they exchange parameters, and how often."""

    name: str = Field(..., min_length=1, max_length=100, description="the arm's directory name")
    k: int = Field(4, ge=1, le=64, description="number of (train, validation) splits and models")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="fraction of the gross training set held out per split")
    transfer: Literal["none", "greedy", "soft"] = "greedy"
    every: int = Field(0, ge=0, le=10**9, description="steps between transfer rounds; 0 = once per budgeted epoch")
    offer: Literal["all", "best"] = "all"
    alpha: float = Field(0.5, gt=0, le=1, description="soft rule: weight of the offered parameters in the average")
    init: Literal["shared", "per_split"] = Field(
        "per_split", description="per_split: split k's initial weights and random streams (sample order, "
                                 "augmentation) are seeded from (seed, k), so the K processes differ; "
                                 "shared: all K start from the trial seed's weights and streams")
    split_budget: Literal["shared", "full"] = Field(
        "shared", description="shared: the K runs get budget/K each (equal compute to one run); "
                              "full: each gets the whole budget (K times the compute, reported as such)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        """An arm's name is a directory under --out: it must not reach outside it."""
        if "/" in v or "\\" in v or not v.isprintable() or v in (".", "..") or v.startswith("."):
            raise ValueError(f"arm name {v!r} must be a plain directory name (no '/', '\\', control "
                             "characters or leading '.'); rename the arm")
        return v

    @model_validator(mode="after")
    def _check(self):
        if self.k == 1 and self.transfer != "none":
            raise ValueError(f"arm {self.name!r}: transfer needs k >= 2; set transfer: none for a single split")
        return self


def _check_multisplit(v: dict[str, Any] | None) -> dict[str, Any] | None:
    """A ``multisplit:`` regimen's arm settings (k, transfer, every, ...; ``ArmSettings``)."""
    if v is None:
        return None
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
LossSpec = Annotated[Union[str, dict[str, Any]], AfterValidator(check_loss)]


class Common(Strict):
    """Settings shared by a trial and a study grid."""

    def with_fingerprint(self, data):
        """This config with ``dataset.fingerprint`` set to the content hash of ``data`` (the loaded
        dataset) when it is a user dataset; built-in datasets are pinned by their checksums."""
        from .data.fingerprint import fingerprint

        if self.dataset.name not in USER_DATASETS:
            return self
        fp = fingerprint(data)
        if self.dataset.fingerprint not in (None, fp):
            from .errors import DataError

            raise DataError(f"dataset {self.dataset.path or self.dataset.function} changed since this run "
                            f"started (fingerprint {self.dataset.fingerprint}, now {fp}); rerun the study: "
                            "new trials will start for the new data")
        return self.model_copy(update={"dataset": self.dataset.model_copy(update={"fingerprint": fp})})

    dataset: DatasetConfig = DatasetConfig()
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainSettings = TrainSettings()
    task: Literal["classification", "retrieval"] = Field("classification", description=(
        "classification (labels, accuracy) or retrieval (paired data, two-tower embeddings, Recall@K); "
        "trainwise/tasks.py"))
    loss: LossSpec = Field("ce", description="ce or bce (classification); sum-of-hinges or max-of-hinges "
                           "(retrieval), a name or {name, margin, warmup_epochs, collapse}")
    target_accuracy: float | None = Field(None, gt=0, le=1)
    robustness: RobustnessConfig | None = None  # attacks after training (robust/config.py)

    def _check_task(self, sampler: dict[str, Any], augment: list[dict[str, Any]], loss) -> None:
        """Settings that do not fit ``task`` (tasks.py): a hinge loss for classification, a mixer or a
        classification-only sampler for retrieval, ..."""
        check_task(self.task, self.dataset, self.model.name, loss, sampler, augment, self.train, self.robustness,
                   self.target_accuracy)

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
        self._check_task(self.sampler, self.augment, self.loss)
        if self.multisplit and self.task != "classification":
            raise ValueError("multisplit is for classification; remove it for task retrieval")
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
