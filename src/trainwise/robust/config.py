"""The ``robustness:`` section of a trial or study config: which attack to run after training,
in which norm, at which radii, on how many test samples (Faghri et al., arXiv:2102.08868, §G of
METHODS.md: robust accuracy next to clean accuracy).

    robustness:
      attack: pgd          # fgsm | bim | mim | pgd
      norm: linf           # linf | l2
      eps: [0.01, 0.02, 0.05, 0.1]
      steps: 10
      step_fraction: 0.25  # step size as a fraction of ε (default 2.5/steps, Madry et al.)
      samples: 1000        # test samples attacked (a fixed random subset; null = all)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RobustnessConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attack: Literal["fgsm", "bim", "mim", "pgd"] = "pgd"
    norm: Literal["linf", "l2"] = "linf"
    eps: list[float] = Field(..., min_length=1, description="attack radii in [0, 1] input units")
    steps: int = Field(10, gt=0)
    step_fraction: float | None = Field(None, gt=0, description="step size / ε; default 2.5/steps")
    random_start: bool | None = Field(None, description="default: true for pgd, false otherwise")
    samples: int | None = Field(1000, gt=0, description="test samples attacked; null = the whole test set")
    batch_size: int = Field(500, gt=0)
    sanity: bool = Field(True, description="run the gradient-masking sanity checks")
    large_eps: float | None = Field(None, gt=0, description="radius where accuracy must be near 0; "
                                    "default 0.5 (linf) or 0.5·sqrt(D) (l2): enough to reach a grey image")
    tolerance: float = Field(0.005, ge=0, description="slack (accuracy) before a sanity check warns")

    @field_validator("eps")
    @classmethod
    def _eps(cls, v: list[float]) -> list[float]:
        bad = [e for e in v if not e > 0]
        if bad:
            raise ValueError(f"attack radii must be > 0, got {bad}; list positive radii in input units")
        return sorted(set(v))
