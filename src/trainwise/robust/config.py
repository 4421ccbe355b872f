"""The ``robustness:`` section of a trial or study config: which attack to run after training,
in which norm, at which radii, on how many test samples (Faghri et al., arXiv:2102.08868, §G of
docs/methods.md §5: robust accuracy next to clean accuracy).

    robustness:
      attack: pgd          # fgsm | bim | mim | pgd | autoattack-lite (APGD-CE + APGD-DLR)
      norm: linf           # linf | l2
      eps: [0.01, 0.02, 0.05, 0.1]
      steps: 10            # default 10; 100 for autoattack-lite
      restarts: 1          # random restarts; an example is robust only if it survives all
      step_fraction: 0.25  # step size as a fraction of ε (default 2.5/steps, Madry et al.)
      samples: 1000        # test samples attacked (a fixed random subset; null = all)
      stronger_factor: 5   # sanity check: rerun with 5x steps at one ε (1 = off)
      stronger_tolerance: 0.01
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class RobustnessConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    attack: Literal["fgsm", "bim", "mim", "pgd", "autoattack-lite"] = "pgd"
    norm: Literal["linf", "l2"] = "linf"
    eps: list[float] = Field(..., min_length=1, max_length=100, description="attack radii in input units")
    # default 10, or 100 for autoattack-lite when not given (kept an int default so that config
    # hashes, which leave out default values, of existing studies do not change)
    steps: int = Field(10, gt=0, le=10_000, description="attack iterations; 100 for autoattack-lite unless given")
    restarts: int = Field(1, gt=0, le=100, description="attack runs per ε; an example is robust only if it "
                          "survives every one (useful with a random start)")
    step_fraction: float | None = Field(None, gt=0, le=10, description="step size / ε; default 2.5/steps "
                                        "(not for autoattack-lite, whose step size adapts)")
    random_start: bool | None = Field(None, description="default: true for pgd and "
                                        "autoattack-lite, false otherwise")
    samples: int | None = Field(1000, gt=0, le=10**7, description="test samples attacked; null = the whole test set")
    batch_size: int = Field(500, gt=0, le=65_536)
    sanity: bool = Field(True, description="run the gradient-masking sanity checks")
    large_eps: float | None = Field(None, gt=0, le=10_000, description="radius where accuracy must be near 0; "
                                    "default 0.5 (linf) or 0.5·sqrt(D) (l2): enough to reach a grey image")
    tolerance: float = Field(0.005, ge=0, le=1, description="slack (accuracy) before a sanity check warns")
    stronger_factor: int = Field(5, ge=1, le=100, description="sanity check: rerun the attack with this many "
                                 "times the steps at one ε; 1 turns the check off")
    stronger_tolerance: float = Field(0.01, ge=0, le=1, description="warn when the stronger attack lowers "
                                      "robust accuracy by more than this")

    @model_validator(mode="after")
    def _per_attack_defaults(self):
        if self.attack == "autoattack-lite" and self.step_fraction is not None:
            raise ValueError("step_fraction does not apply to autoattack-lite (APGD starts at 2ε "
                             "and halves its step itself); remove it")
        if self.attack == "autoattack-lite" and "steps" not in self.model_fields_set:
            self.steps = 100
        return self

    @field_validator("eps")
    @classmethod
    def _eps(cls, v: list[float]) -> list[float]:
        bad = [e for e in v if not 0 < e <= 10_000]
        if bad:
            raise ValueError(f"attack radii must be > 0 (and at most 10000), got {bad}; list positive radii "
                             "in input units")
        return sorted(set(v))
