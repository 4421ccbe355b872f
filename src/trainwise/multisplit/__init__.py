"""Multi-split training with knowledge transfer (Zhang et al., "A Novel DNN Training Framework
via Data Sampling and Multi-Task Optimization", arXiv:2007.01016; docs/methods.md §6).

``trainwise multisplit CONFIG``: K (train, validation) splits, K models trained in parallel
with periodic parameter transfer, one output model. See ``run.py`` for the procedure and the
budget rule, ``transfer.py`` for the acceptance rules, ``executors.py`` for where it runs.
"""

from .config import ArmSettings, MultiSplitConfig
from .run import run_arm, run_multisplit, run_study_trial

__all__ = ["ArmSettings", "MultiSplitConfig", "run_arm", "run_multisplit", "run_study_trial"]
