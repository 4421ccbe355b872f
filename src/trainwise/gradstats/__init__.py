"""Per-example gradient statistics without per-example gradients (Faghri, Duvenaud, Fleet & Ba,
"A Study of Gradient Variance in Deep Learning", arXiv:2007.04532; public code fartashf/gvar_code).

- ``rank1``: distances between per-example gradients and rank-1 centres from the layers' factors
  (a few matrix products per layer; conv layers through unfold, the cheaper of two forms).
- ``capture``: forward hooks on ``Linear``/``Conv2d`` weights collecting the factors A_i, G_i.
- ``cluster``: gradient clustering (size-weighted assignment, rank-1 centre update, min-size split).
- ``stratified``: draws cycling through the clusters with unbiased loss weights M·N_k/N.
- ``probe``: ``GradStats``, the loop's per-example passes offered to samplers (counted, eval mode).
- ``meter``: the gradient-variance meter (``train.gradient_variance``), for any sampler;
  ``report``: its plot in study reports.

The sampler itself is ``trainwise/sampling/gradient_clustering.py``.
"""

from .capture import Capture, tracked_layers
from .cluster import em_iteration, init_centres
from .meter import GradientVarianceMeter
from .probe import GradStats
from .rank1 import Factors, squared_distances
from .stratified import StratifiedCycle

__all__ = ["Capture", "Factors", "GradStats", "GradientVarianceMeter", "StratifiedCycle", "em_iteration", "init_centres",
           "squared_distances", "tracked_layers"]
