"""trainwise: for my data and my compute budget, which training procedure gives the best model?

The data path, top to bottom (see ``trainwise.train``):
dataset tensors -> sampler picks indices -> batch transform mixes inputs and soft
targets -> model -> per-sample loss (optional weights) -> feedback to the sampler ->
optimizer step under a budget-aware learning-rate schedule.
"""

__version__ = "0.1.0"
