"""What a run on a GPU needs beyond the plain loop: mixed precision, channels-last memory format,
``torch.compile``, and copies to the device that never make the host wait.

``Accel(cfg.train, device)`` holds a run's settings; the loop (``train.py``) asks it for

- ``prepare(model, example)``: channels-last and compilation, in place (the module and its
  state-dict keys stay the same, so checkpoints and ``model.pt`` are those of an eager run);
- ``autocast()``: the context every forward pass of the run runs in (training, scoring, evaluation);
- ``step(loss, opt)``: zero the gradients, backward, optimizer step (through the fp16 scaler);
- ``state_dict()`` / ``load_state_dict(sd)``: the gradient scaler's state, kept in the checkpoint.

Settings (``train.*``, see ``study/config.py``):

- ``precision: fp32 | bf16 | fp16``. fp32 (the default) runs exactly the plain loop. bf16 and fp16
  run the forward passes under ``torch.autocast`` in that type; weights, gradients and optimizer
  state stay float32, and the logits are cast back to float32 before the loss, so losses, sampler
  feedback and metrics are float32. fp16 adds a gradient scaler (``torch.amp.GradScaler``: the loss
  is scaled before backward, a step whose gradients hold inf/NaN is skipped, the scale adapts); its
  scale and growth counter are saved in each checkpoint. The scaler reads its inf check on the host
  once per step (one more host sync than bf16). bf16 has float32's range and needs no scaler; it
  also works on the CPU. fp16 needs CUDA: CPU autocast would emulate it slowly (refused, as
  Lightning refuses it; use bf16), and bf16 on a GPU without bf16 support is refused too.
- ``channels_last: true``: the model's 4-D weights and its 4-D inputs in NHWC memory format (faster
  convolutions on tensor cores); the same values, summed in another order (last bits differ).
- ``compile: default | reduce-overhead``: ``torch.compile`` of the model's forward (``reduce-overhead``
  adds CUDA graphs on CUDA). The training graphs (forward and backward) are compiled before the
  first step on a throwaway step that leaves weights, buffers, gradients and random state as they
  were; if compiling fails there (no C++ compiler, an unsupported model or Python) or later in a
  forward (evaluation), the run prints one warning line and continues eagerly.

``to_device(t, device)`` copies a host tensor (sampled indices, random draws) to a CUDA device
through pinned memory without blocking; a plain ``.to("cuda")`` from pageable memory synchronises
the host with the device each time.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import Callable

import torch

from .errors import TrainwiseError

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``t`` on ``device`` without a host sync: host -> CUDA through pinned memory, non-blocking
    (the pinned buffer is held until the copy is done); anything else as ``t.to(device)``."""
    device = torch.device(device)
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run well, with one line naming the fix."""
    if precision == "fp16" and device.type != "cuda":
        raise TrainwiseError(f"train.precision: fp16 needs a CUDA device (this run is on {device.type}); "
                             "use train.precision: bf16 on the CPU, or train.device: cuda")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TrainwiseError(f"train.precision: bf16 is not supported by {torch.cuda.get_device_name(device)}; "
                             "use train.precision: fp16")


def _nhwc_inputs(module: torch.nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: 4-D inputs in channels-last memory format."""
    if args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
        return (args[0].contiguous(memory_format=torch.channels_last), *args[1:])
    return args


def warn(msg: str) -> None:
    print(f"trainwise: warning: {msg}", file=sys.stderr, flush=True)


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]}"


class _CompiledCall:
    """A module's ``__call__`` through ``torch.compile``; on the first failure, eager from then on."""

    def __init__(self, model: torch.nn.Module, mode: str):
        self.model = model
        self.fn = torch.compile(model._call_impl, mode=mode)

    def __call__(self, *args, **kwargs):
        try:
            return self.fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001  (a compiler failure; a real model error recurs eagerly)
            fall_back(self.model, e)
            return self.model._call_impl(*args, **kwargs)


def compiled(model: torch.nn.Module) -> bool:
    return isinstance(getattr(model, "_compiled_call_impl", None), _CompiledCall)


def fall_back(model: torch.nn.Module, e: BaseException) -> None:
    model._compiled_call_impl = None
    warn(f"torch.compile failed ({_first_line(e)}); training without it, as with train.compile: false")


class Accel:
    def __init__(self, settings, device: torch.device):
        check_precision(settings.precision, device)
        self.device = device
        self.precision = settings.precision
        self.dtype = DTYPES[settings.precision]
        self.channels_last = settings.channels_last
        self.compile = settings.compile or None  # False -> None
        self.scaler = None
        if settings.precision == "fp16":
            Scaler = getattr(torch.amp, "GradScaler", None)
            self.scaler = Scaler(device.type) if Scaler is not None else torch.cuda.amp.GradScaler()

    def autocast(self):
        """The context of every forward pass: autocast to bf16/fp16, or nothing for fp32."""
        return nullcontext() if self.dtype is None else torch.autocast(self.device.type, dtype=self.dtype)

    @staticmethod
    def fp32(logits: torch.Tensor) -> torch.Tensor:
        """bf16/fp16 outputs of an autocast forward as float32; any other type as it is."""
        return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits

    def prepare(self, model: torch.nn.Module, example: Callable[[], torch.Tensor]) -> torch.nn.Module:
        """Channels-last and compilation of ``model``, in place. ``example()``: a training batch's
        inputs, for the throwaway step that compiles the training graphs before the run starts."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
            model.register_forward_pre_hook(_nhwc_inputs)
        if self.compile:
            try:
                model._compiled_call_impl = _CompiledCall(model, self.compile)
                self._warm_up(model, example())
            except Exception as e:  # noqa: BLE001  (compiling failed: train eagerly)
                fall_back(model, e)
        return model

    def _warm_up(self, model: torch.nn.Module, example: torch.Tensor) -> None:
        """One forward + backward in training mode through the compiled call, so that a compiler
        failure (forward or backward graph) shows before the run; weights, buffers (BatchNorm
        statistics), gradients and the random state are left as they were."""
        saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            was = model.training
            model.train()
            with self.autocast():
                out = model._compiled_call_impl.fn(example)
            out.float().logsumexp(1).mean().backward()
            model.train(was)
        with torch.no_grad():
            for k, v in model.state_dict().items():
                v.copy_(saved[k])
        for p in model.parameters():
            p.grad = None

    def begin_step(self) -> None:
        """Before each training step: CUDA graphs (``reduce-overhead``) start a new iteration."""
        if self.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, clip: float | None = None) -> None:
        """Zero the gradients, backward, clip the gradients' global L2 norm to ``clip`` when given,
        and take the optimizer step (scaled, and skipped on inf/NaN, for fp16)."""
        opt.zero_grad(set_to_none=True)
        params = [p for g in opt.param_groups for p in g["params"]] if clip else []
        if self.scaler is None:
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            return
        self.scaler.scale(loss).backward()
        if clip:
            self.scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(params, clip)
        self.scaler.step(opt)
        self.scaler.update()

    def state_dict(self) -> dict:
        return {"scaler": self.scaler.state_dict()} if self.scaler is not None else {}

    def load_state_dict(self, sd: dict) -> None:
        if self.scaler is not None and sd.get("scaler"):
            self.scaler.load_state_dict(sd["scaler"])


__all__ = ["Accel", "to_device", "check_precision", "DTYPES"]
