"""Trial optimizer steps that leave no trace: the look-ahead the training loop offers to samplers.

Greedy batch orderers such as max-loss-delta (Simionescu, "Deep Learning Training Procedure
Augmentations", arXiv:2211.14395, the Perfect Ordering Approximation; public code
Tensor-Reloaded/Convergence, ``orderers/MaxLossDeltaOrderer.py``) ask "what would one
optimizer step on this candidate batch do to the loss?" for several candidates, then train on
one of them. ``Lookahead`` answers it on the loop's real model and optimizer and then puts
everything back, bit for bit:

- ``Snapshot`` copies every tensor a step can change — parameters, buffers (BatchNorm running
  statistics and ``num_batches_tracked``), the optimizer's per-parameter state (momentum,
  Adam moments and step counts) — into buffers allocated once and reused (no ``deepcopy``), and
  remembers which optimizer states existed (a first step creates momentum buffers; restoring
  removes them again), the learning rates, the ``.grad`` references and the global RNG state.
- ``Lookahead(candidates, probe=None)``: snapshot once; for each candidate batch take the loss
  (the forward that is backpropagated, as the reference does), one optimizer step, the loss
  again without gradients, and restore. With ``probe`` (training indices), both losses are
  taken on the probe instead (the "before" once: every trial starts from the same state).
  ``mode="eval"`` (the reference) runs the trials with the model in eval mode, so BatchNorm
  uses, and does not update, its running statistics; ``"train"`` runs them in train mode (the
  buffers it updates are restored).

Every trial forward and backward is reported through ``on_work(forwarded, backpropagated)`` so
the loop counts it (samples forwarded/backpropagated and the ``forward_backward`` budget).
"""

from __future__ import annotations

from typing import Callable, Literal

import torch


class Snapshot:
    """The state one optimizer step can change, saved into preallocated buffers and restored."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
        self.model, self.opt = model, optimizer
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.buffers: dict[tuple, torch.Tensor] = {}  # allocated on first use, then reused
        self.saved: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _live(self):
        for i, p in enumerate(self.model.parameters()):
            yield ("param", i), p
        for i, b in enumerate(self.model.buffers()):
            yield ("buffer", i), b
        for i, p in enumerate(self.params):
            for k, v in self.opt.state.get(p, {}).items():
                if isinstance(v, torch.Tensor):
                    yield ("state", i, k), v

    @torch.no_grad()
    def save(self) -> None:
        self.saved = []
        for key, t in self._live():
            buf = self.buffers.get(key)
            if buf is None or buf.shape != t.shape or buf.dtype != t.dtype or buf.device != t.device:
                buf = self.buffers[key] = torch.empty_like(t)
            buf.copy_(t)
            self.saved.append((t, buf))
        # the state dicts themselves (which keys exist) and plain values, by reference
        self.state = {p: dict(self.opt.state[p]) for p in self.params if p in self.opt.state}
        self.lrs = [g["lr"] for g in self.opt.param_groups]
        self.grads = [p.grad for p in self.params]
        self.rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None

    @torch.no_grad()
    def restore(self) -> None:
        for t, buf in self.saved:
            t.copy_(buf)
        for p in self.params:
            if p in self.state:
                self.opt.state[p] = dict(self.state[p])
            else:
                self.opt.state.pop(p, None)
        for g, lr in zip(self.opt.param_groups, self.lrs):
            g["lr"] = lr
        for p, grad in zip(self.params, self.grads):
            p.grad = grad
        torch.set_rng_state(self.rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)


class Lookahead:
    """Loss before and after one optimizer step on each candidate batch, every step undone.

    ``batch_loss(idx)``: the mean training loss of the training samples ``idx`` under the
    current model (a graph when gradients are enabled); ``on_work(forwarded, backpropagated)``
    counts the samples of the trial passes; ``lr()``: the learning rate of the step about to be
    taken (the trial steps use it), or None to keep the optimizer's; ``clip``: the gradient-norm
    clip of the real steps (``optimizer.grad_clip``), which the trial steps apply too."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 batch_loss: Callable[[torch.Tensor], torch.Tensor],
                 on_work: Callable[[int, int], None] = lambda f, b: None,
                 lr: Callable[[], float] | None = None, clip: float | None = None):
        self.model, self.opt = model, optimizer
        self.batch_loss, self.on_work, self.lr, self.clip = batch_loss, on_work, lr, clip
        self.snapshot = Snapshot(model, optimizer)

    def __call__(self, candidates: list[torch.Tensor], probe: torch.Tensor | None = None,
                 mode: Literal["eval", "train"] = "eval") -> tuple[torch.Tensor, torch.Tensor]:
        """(before, after): float64 losses, one per candidate; model, optimizer, BatchNorm buffers,
        gradients, learning rates and RNG are left exactly as they were."""
        was_training = self.model.training
        snap = self.snapshot
        snap.save()
        lr = self.lr() if self.lr is not None else None
        before, after = [], []  # losses stay on the device until the end: one host sync per call
        dirty = False  # whether anything changed since the snapshot
        try:
            self.model.train(mode == "train")
            if probe is not None:
                dirty = mode == "train"  # a train-mode forward moves the BatchNorm running statistics
                with torch.no_grad():
                    probe_before = self.batch_loss(probe).detach()
                self.on_work(len(probe), 0)
            for idx in candidates:
                if dirty:
                    snap.restore()
                dirty = True
                if lr is not None:
                    for g in self.opt.param_groups:
                        g["lr"] = lr
                for p in snap.params:
                    p.grad = None
                loss = self.batch_loss(idx)
                loss.backward()
                if self.clip:
                    torch.nn.utils.clip_grad_norm_(snap.params, self.clip)
                self.opt.step()
                with torch.no_grad():
                    after.append(self.batch_loss(idx if probe is None else probe).detach())
                before.append(loss.detach() if probe is None else probe_before)
                self.on_work(len(idx) + (len(idx) if probe is None else len(probe)), len(idx))
        finally:
            if dirty:
                snap.restore()
            self.model.train(was_training)
        if not candidates:
            return torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)
        return torch.stack(before).double().cpu(), torch.stack(after).double().cpu()
