"""Knowledge transfer between the K training processes: the acceptance rules.

Zhang et al., "A Novel DNN Training Framework via Data Sampling and Multi-Task
Optimization", arXiv:2007.01016: promising parameters found by one process are offered
to the others, and a process adopts them only where that improves its own validation
score. The paper's exact rule was not available; these are ours:

- ``greedy``: the receiver evaluates every offered parameter set on its own validation
  split and adopts the best one if it beats its current parameters.
- ``soft``: the candidates are averages ``(1 - alpha) * own + alpha * offer`` (floating
  parameters and buffers; integer buffers such as BatchNorm's step count stay the
  receiver's); the best candidate is adopted if it beats the current parameters. With
  ``init: shared`` the K models start from the same weights, so their averages stay in one
  basin; with ``init: per_split`` they do not, and an average of two unrelated networks is
  usually worse than either (the acceptance test then rejects it).

"Beats" compares validation accuracy, then validation loss (lower wins) on a tie.
Only the model's parameters move; the receiver keeps its own optimizer state (momentum),
sampler position and random streams, so each process still runs its own schedule.
"""

from __future__ import annotations

import io

import torch

Score = tuple[float, float]  # (val accuracy, val loss)
State = dict[str, torch.Tensor]


def better(a: Score, b: Score) -> bool:
    """True if score ``a`` is strictly better than ``b``: higher accuracy, then lower loss."""
    return a[0] > b[0] or (a[0] == b[0] and a[1] < b[1])


def average(own: State, offer: State, alpha: float) -> State:
    """``(1 - alpha) * own + alpha * offer`` for floating tensors; others are kept from ``own``."""
    return {k: (torch.lerp(v, offer[k].to(v.dtype), alpha) if v.is_floating_point() else v.clone())
            for k, v in own.items()}


def choose(own: Score, offers: list[Score]) -> int | None:
    """Index of the best offer if it beats ``own``, else None (the first wins a tie)."""
    best = None
    for i, s in enumerate(offers):
        if best is None or better(s, offers[best]):
            best = i
    return best if best is not None and better(offers[best], own) else None


def pack(state: State) -> bytes:
    """A state dict as bytes: what travels between processes and over the network."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buf)
    return buf.getvalue()


def unpack(blob: bytes) -> State:
    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)


__all__ = ["better", "average", "choose", "pack", "unpack", "Score", "State"]
