"""Adversarial robustness (Faghri et al., "Bridging the Gap Between Adversarial Robustness and
Optimization Bias", arXiv:2102.08868): attacks on deep models, robust evaluation with sanity
checks, and the linear optimisation-bias lab (``trainwise robust linear``)."""

from .attacks import ATTACKS, NORMS, bim, fgsm, mim, perturb, pgd
from .config import RobustnessConfig
from .evaluate import robust_accuracy, robust_metrics, sanity_warnings

__all__ = ["ATTACKS", "NORMS", "fgsm", "bim", "mim", "pgd", "perturb", "RobustnessConfig",
           "robust_accuracy", "robust_metrics", "sanity_warnings"]
