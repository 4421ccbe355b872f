"""The gradient-variance meter (``train.gradient_variance: {every: K, draws: T}``): how noisy is the
mini-batch gradient a sampler trains with, against uniform sampling at batch B and at 2B?
(Faghri, Duvenaud, Fleet & Ba, "A Study of Gradient Variance in Deep Learning", arXiv:2007.04532,
§4; public code fartashf/gvar_code ``estim/gestim.py`` ``get_Ege_var``.)

Every K optimizer steps, at the current (fixed) weights, the meter takes T mini-batch gradients of
each of three estimators and records, per estimator, over the D trained parameters,

    var  = (1/D) Σ_j Σ_t (ĝ_tj − ḡ_j)² / (T − 1)          (ḡ the mean of the T draws)
    nvar = (1/D) Σ_j var_j / mean_t ĝ_tj²                  (coordinates whose draws are all 0 count 0)

- ``sampler``: T successive batches the run's sampler would hand out from here (its own state and
  generators, its scoring passes and look-ahead trial steps included), each loss weighted as the
  loop weights it;
- ``uniform`` and ``uniform_2b``: T batches of B (2B) samples drawn uniformly without replacement,
  independently of each other, with a generator seeded by (seed, step).

The gradients are those of the run's loss in train mode (BatchNorm on batch statistics), on
clean inputs (no augmentation: the variance that comes from which samples are drawn) and computed
with ``torch.autograd.grad``, so no ``.grad`` is touched. The reference estimates ḡ from T other
draws (2T gradients); we use the same T with an unbiased (T − 1) denominator.

Nothing of a measurement stays in the run: the sampler's state (``state_dict`` deep-copied, then
loaded back), the global RNG (CPU and CUDA), the model's buffers and mode and the loop's sample
counters are restored, and a ``GradStats`` probe is paused (no re-clustering inside a
measurement). A run with the meter on ends with the same weights as without it
(``tests/gradstats/test_gradstats_meter.py``). Its time is not part of the trial's training time;
each record carries its own ``seconds``.
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Iterable

import torch
from torch import nn

from ..errors import ConfigError

KIND = "gradient_variance"  # the ``kind`` of the meter's records in metrics.jsonl
SEED_OFFSET = 0x5851F42D  # the uniform draws' generator: seed + this + step


class Moments:
    """Per-coordinate running mean and sum of squared deviations (Welford, float64)."""

    def __init__(self):
        self.t = 0
        self.mean = self.m2 = self.sq = None

    def add(self, g: torch.Tensor) -> None:
        g = g.double()
        self.t += 1
        if self.mean is None:
            self.mean, self.m2, self.sq = g.clone(), torch.zeros_like(g), g * g
            return
        delta = g - self.mean
        self.mean += delta / self.t
        self.m2 += delta * (g - self.mean)
        self.sq += g * g

    def variance(self) -> tuple[float, float]:
        """(var, nvar) as defined in the module docstring."""
        if self.t < 2:
            raise ValueError("the variance needs at least two draws")
        var = self.m2 / (self.t - 1)
        second = self.sq / self.t
        ratio = torch.where(second > 0, var / second.clamp_min(1e-300), torch.zeros_like(var))
        return float(var.mean()), float(ratio.mean())


def variance_of(grads: Iterable[torch.Tensor]) -> tuple[float, float]:
    """(var, nvar) of a stream of flat gradients."""
    m = Moments()
    for g in grads:
        m.add(g)
    return m.variance()


class GradientVarianceMeter:
    """``loss_of(idx, weight=None)``: the run's (weighted) mean training loss over training samples
    ``idx`` on clean inputs, with its graph (the loop's ``trial_loss``); ``n`` training samples."""

    def __init__(self, every: int, draws: int, model: nn.Module, loss_of: Callable[..., torch.Tensor], n: int,
                 batch_size: int, seed: int, probe=None):
        if n < 2 * batch_size:
            raise ConfigError(f"train.gradient_variance compares against uniform batches of 2 x batch_size "
                              f"= {2 * batch_size}, but the training set has {n} samples; lower "
                              "train.batch_size or remove train.gradient_variance")
        self.every, self.draws, self.model, self.loss_of, self.n = every, draws, model, loss_of, n
        self.batch_size, self.seed, self.probe = batch_size, seed, probe
        self.params = [p for p in model.parameters() if p.requires_grad]

    def due(self, step: int) -> bool:
        return step > 0 and step % self.every == 0

    def gradient(self, idx: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The flat gradient of the run's (weighted) mean loss over training samples ``idx``."""
        grads = torch.autograd.grad(self.loss_of(idx, weight), self.params, allow_unused=True)
        return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                          for g, p in zip(grads, self.params)])

    def sampler_draws(self, state: dict, sampler, scorer, probes: dict):
        """The next ``draws`` selections of ``sampler`` from the loop's position ``state``."""
        epoch, step, steps = state["epoch"], state["step_in_epoch"], state["epoch_steps"]
        for _ in range(self.draws):
            if step >= steps:
                epoch, step = epoch + 1, 0
                steps = sampler.begin_epoch(epoch)
            yield sampler.next_batch(step, scorer, **probes)
            step += 1

    def uniform_draws(self, size: int, step: int):
        gen = torch.Generator().manual_seed(self.seed + SEED_OFFSET + step)
        for _ in range(self.draws):
            yield torch.randperm(self.n, generator=gen)[:size]

    def measure(self, state: dict, sampler, scorer, probes: dict) -> dict:
        """One measurement at the current weights; the run is left exactly as it was."""
        t0 = time.perf_counter()
        saved = Saved(self.model, sampler, state, self.probe)
        try:
            self.model.train()
            rec = {"step": state["step"], "kind": KIND, "draws": self.draws}
            rec["var"], rec["nvar"] = variance_of(
                self.gradient(sel.idx, sel.weight) for sel in self.sampler_draws(state, sampler, scorer, probes))
            for name, size in (("uniform", self.batch_size), ("uniform_2b", 2 * self.batch_size)):
                rec[f"var_{name}"], rec[f"nvar_{name}"] = variance_of(
                    self.gradient(idx) for idx in self.uniform_draws(size, state["step"]))
        finally:
            saved.restore()
        rec["seconds"] = time.perf_counter() - t0
        return rec


class Saved:
    """Everything a measurement could change, saved on entry and put back by ``restore``."""

    COUNTERS = ("samples_forwarded", "samples_backpropagated")

    def __init__(self, model: nn.Module, sampler, state: dict, probe=None):
        self.model, self.sampler, self.state, self.probe = model, sampler, state, probe
        self.training = model.training
        self.buffers = [b.detach().clone() for b in model.buffers()]
        self.sampler_state = copy.deepcopy(sampler.state_dict())
        self.counters = {k: state[k] for k in self.COUNTERS if k in state}
        self.rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        if probe is not None:
            probe.paused = True

    @torch.no_grad()
    def restore(self) -> None:
        for b, v in zip(self.model.buffers(), self.buffers):
            b.copy_(v)
        self.model.train(self.training)
        self.sampler.load_state_dict(self.sampler_state)
        self.state.update(self.counters)
        torch.set_rng_state(self.rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        if self.probe is not None:
            self.probe.paused = False
