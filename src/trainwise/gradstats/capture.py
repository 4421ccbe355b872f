"""Per-example factors A_i (layer inputs) and G_i (gradients w.r.t. layer outputs) of a model's
``Linear`` and ``Conv2d`` weights, collected by forward hooks (Faghri et al., "A Study of Gradient
Variance in Deep Learning", arXiv:2007.04532; the reference ``gluster/layer.py`` uses a forward
pre-hook and a module backward hook).

``Capture(model)`` is a context manager: while it is open, every forward of a tracked layer keeps
its input and hands the rest of the network a copy of its output, so that an in-place operation
after it (``ReLU(inplace=True)``) cannot change the tensor whose gradient we ask for. Then
``factors(loss)`` asks autograd for the gradient of ``loss`` w.r.t. each tracked layer's output —
only what that needs is computed: no weight gradient, nothing below the lowest tracked layer —
and returns one ``Factors`` per layer, in ``model.modules()`` order:

- ``Linear`` on B × d_in inputs: A B × d_in, G B × d_out; on B × … × d_in inputs the middle
  dimensions are positions (A B × d_in × T).
- ``Conv2d`` (groups = 1): A is the input unfolded into patches, B × (c_in·k_h·k_w) × T, padded as
  the layer pads (any ``padding_mode``), G the output gradient B × d_out × T.

With ``loss`` the *sum* of per-example losses (and no layer mixing examples, e.g. BatchNorm in
eval mode), G_i A_iᵀ summed over positions is exactly example i's weight gradient. Biases and
other parameters are left out, as in the paper. Layers whose weight does not require a gradient
are not tracked; a layer called twice in one forward is refused (its gradient is not rank-1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TrainwiseError
from .rank1 import Factors


def tracked_layers(model: nn.Module) -> list[nn.Module]:
    """The ``Linear`` and ``Conv2d`` modules whose weight is trained, in ``modules()`` order."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.weight.requires_grad:
            if isinstance(m, nn.Conv2d) and m.groups != 1:
                raise TrainwiseError(f"gradient statistics support Conv2d with groups=1; layer {name!r} has "
                                     f"groups={m.groups} (use another sampler for this model)")
            out.append(m)
    return out


def layer_dims(m: nn.Module) -> tuple[int, int]:
    """(d_in, d_out) of a tracked layer's weight seen as a d_out × d_in matrix."""
    w = m.weight
    return int(w[0].numel()), int(w.shape[0])


def conv_patches(m: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """The conv's input as B × (c_in·k_h·k_w) × T patches, in the weight's (c_in, k_h, k_w) order."""
    mode = "constant" if m.padding_mode == "zeros" else m.padding_mode
    x = F.pad(x, m._reversed_padding_repeated_twice, mode=mode)
    return F.unfold(x, m.kernel_size, dilation=m.dilation, stride=m.stride)


def layer_factors(m: nn.Module, x: torch.Tensor, gout: torch.Tensor | None, dtype: torch.dtype) -> Factors:
    b = x.shape[0]
    d_in, d_out = layer_dims(m)
    if isinstance(m, nn.Conv2d):
        a = conv_patches(m, x)
        g = gout.reshape(b, d_out, -1) if gout is not None else a.new_zeros(b, d_out, a.shape[2])
    elif x.dim() == 2:
        a = x
        g = gout if gout is not None else x.new_zeros(b, d_out)
    else:  # a linear layer applied at every position of B × … × d_in
        a = x.reshape(b, -1, d_in).transpose(1, 2)
        g = gout.reshape(b, -1, d_out).transpose(1, 2) if gout is not None else a.new_zeros(b, d_out, a.shape[2])
    return Factors(a.to(dtype), g.to(dtype))


class Capture:
    """Forward hooks on the tracked layers while open; ``factors(loss)`` after each forward."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.layers = tracked_layers(model)
        self._handles: list = []
        self._inputs: dict[nn.Module, torch.Tensor] = {}
        self._outputs: dict[nn.Module, torch.Tensor] = {}

    def __enter__(self) -> "Capture":
        self._handles = [m.register_forward_hook(self._hook) for m in self.layers]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self.clear()

    def clear(self) -> None:
        self._inputs.clear()
        self._outputs.clear()

    def _hook(self, m: nn.Module, inp: tuple, out: torch.Tensor):
        if not torch.is_grad_enabled():
            return None
        if m in self._inputs:
            raise TrainwiseError(f"layer {type(m).__name__} runs twice in one forward pass: its gradient is not "
                                 "rank-1, so gradient statistics cannot be computed for this model")
        self._inputs[m] = inp[0].detach()
        self._outputs[m] = out
        return out.clone()  # the network goes on with a copy: in-place ops after the layer leave ``out`` intact

    def factors(self, loss: torch.Tensor, dtype: torch.dtype | None = None) -> list[Factors]:
        """Per-example factors of every tracked layer for the forward that produced ``loss`` (a
        scalar: the sum of per-example losses)."""
        used = [m for m in self.layers if m in self._outputs]
        if not used:
            raise TrainwiseError("no Linear or Conv2d layer with a trained weight ran in the forward pass; "
                                 "gradient statistics need at least one")
        grads = dict(zip(used, torch.autograd.grad(loss, [self._outputs[m] for m in used], allow_unused=True)))
        ref = self._inputs[used[0]]
        dtype = dtype or (ref.dtype if ref.dtype == torch.float64 else torch.float32)
        out = []
        for m in self.layers:
            if m in self._inputs:
                out.append(layer_factors(m, self._inputs[m], grads[m], dtype))
            else:  # not run in this forward: a zero gradient
                d_in, d_out = layer_dims(m)
                b = ref.shape[0]
                out.append(Factors(ref.new_zeros(b, d_in, dtype=dtype), ref.new_zeros(b, d_out, dtype=dtype)))
        self.clear()
        return out
