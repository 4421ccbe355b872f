"""A CPU stand-in for ``torch.cuda.set_sync_debug_mode``: which host syncs a run would make on a GPU.

On a machine without CUDA nothing lives on a device, so syncs cannot be counted the CUDA way.
``HostSyncTracer`` marks tensors as "on the device" instead (a tensor subclass, ``OnDevice``):
the dataset's tensors, and every tensor a factory function creates with ``device=<torch.device>``
(what code does to put a tensor on the training device); everything computed from marked
tensors is marked too (logits, losses, softmax, sampler feedback). Host code's tensors (a
``torch.Generator``'s draws, sampled indices) stay unmarked. Within ``tracer.window()`` it records
an event for each thing that would make the host wait for a GPU:

- ``read``: a marked tensor's value brought to the host (``item``, ``tolist``, ``bool``,
  ``float``, ``int``, ``numpy``, ``cpu()``, ``.to("cpu")``) or an op whose output size depends
  on marked values (``nonzero``, boolean-mask indexing, ``unique``, ``masked_select``, ...);
- ``upload``: an unmarked tensor copied to the device by a blocking ``.to(device)`` (or
  ``torch.tensor/as_tensor(host tensor, device=...)``) instead of ``trainwise.accel.to_device``,
  the pinned non-blocking route;
- ``mixed``: an op mixing marked tensors with unmarked ones that have dimensions (on a GPU an
  error, or for indexing an implicit blocking copy). The model's parameters and buffers are
  exempt (pass the model to ``exempt``): in this simulation they stay unmarked.

Each event carries the innermost trainwise frame (``module:function:line``) and whether it
happened inside a sampler's ``begin_epoch`` (once per epoch, not per step).

What this does not see: host reads of device tensors created by other means than a factory's
``device=`` (none in trainwise's step path), syncs inside PyTorch's own kernels (e.g. the fp16
GradScaler's inf check) and anything CUDA-specific; ``tests/test_host_sync.py`` counts syncs with
``torch.cuda.set_sync_debug_mode`` where CUDA exists.
"""

from __future__ import annotations

import sys
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode

READS = {"item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__", "__complex__", "cpu",
         "nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "bincount", "equal", "allclose"}
INDEXING = {"__getitem__", "__setitem__", "index_put_", "index_put"}
FACTORIES = {"zeros", "ones", "empty", "full", "arange", "rand", "randn", "randint", "randperm", "linspace", "eye",
             "zeros_like", "ones_like", "empty_like", "full_like", "tensor", "as_tensor"}


class OnDevice(torch.Tensor):
    """A tensor the simulation treats as living on the GPU (results of ops on it are marked too)."""


def marked(t) -> bool:
    return isinstance(t, OnDevice)


def mark(t):
    if isinstance(t, torch.Tensor) and not isinstance(t, OnDevice) and not isinstance(t, torch.nn.Parameter):
        return t.as_subclass(OnDevice)
    if isinstance(t, (tuple, list)):
        return type(t)(mark(x) for x in t)
    return t


def _tensors(args) -> list[torch.Tensor]:
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, (tuple, list)):
            out.extend(x for x in a if isinstance(x, torch.Tensor))
    return out


def _where() -> tuple[str, bool]:
    """The innermost trainwise frame of the caller, and whether a sampler's begin_epoch is on the stack."""
    f = sys._getframe(1)
    where, per_epoch = "?", False
    while f is not None:
        mod = f.f_globals.get("__name__", "")
        if mod.startswith("trainwise") and where == "?":
            where = f"{mod.removeprefix('trainwise.')}:{f.f_code.co_name}:{f.f_lineno}"
        if f.f_code.co_name == "begin_epoch":
            per_epoch = True
        f = f.f_back
    return where, per_epoch


@dataclass(frozen=True)
class Event:
    kind: str  # read | upload | mixed
    op: str
    where: str
    per_epoch: bool


class HostSyncTracer(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.events: list[Event] = []
        self.active = False
        self.exempt_ids: set[int] = set()

    def exempt(self, model: torch.nn.Module) -> None:
        self.exempt_ids |= {id(t) for t in [*model.parameters(), *model.buffers()]}

    @contextmanager
    def window(self):
        self.active = True
        try:
            yield self
        finally:
            self.active = False

    def _note(self, kind: str, op: str) -> None:
        if self.active:
            where, per_epoch = _where()
            self.events.append(Event(kind, op, where, per_epoch))

    def per_step(self) -> Counter:
        return Counter((e.kind, e.op, e.where) for e in self.events if not e.per_epoch)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        ts = _tensors(args) + _tensors(kwargs.values())
        dev = [t for t in ts if marked(t)]
        if name == "to" and args and isinstance(args[0], torch.Tensor):
            return self._to(func, args, kwargs)
        if dev:
            if name in READS:
                self._note("read", name)
            elif name in INDEXING and len(args) > 1 and any(
                    marked(t) and t.dtype == torch.bool for t in _tensors(args[1:2])):
                self._note("read", f"{name}[bool mask]")
            host = [t for t in ts if not marked(t) and t.dim() > 0 and id(t) not in self.exempt_ids]
            if host:
                self._note("mixed", name)
        out = func(*args, **kwargs)
        if name == "cpu" and marked(out):  # now on the host
            return out.as_subclass(torch.Tensor)
        if name in FACTORIES and isinstance(kwargs.get("device"), torch.device):
            if name in ("tensor", "as_tensor") and args and isinstance(args[0], torch.Tensor) and not marked(args[0]):
                self._note("upload", name)
            return mark(out)
        return out

    def _to(self, func, args, kwargs):
        t = args[0]
        target = kwargs.get("device")
        for a in args[1:]:
            if isinstance(a, (torch.device, str)):
                target = a
        out = func(*args, **kwargs)
        if target is None:  # a dtype conversion
            return out
        if isinstance(target, str) and target.startswith("cpu"):  # explicitly to the host
            if marked(t):
                self._note("read", "to(cpu)")
            return out.as_subclass(torch.Tensor) if marked(out) else out
        if not marked(t):  # host -> device
            caller = sys._getframe(2).f_code  # _to <- __torch_function__ <- the caller of .to()
            if not (caller.co_name == "to_device" and caller.co_filename.endswith("accel.py")):
                self._note("upload", "to(device)")
            return mark(out)
        return out


def on_device(data):
    """``TensorData`` whose tensors are marked as on the device."""
    from dataclasses import fields, replace

    return replace(data, **{f.name: mark(getattr(data, f.name)) for f in fields(data)
                            if isinstance(getattr(data, f.name), torch.Tensor)})
