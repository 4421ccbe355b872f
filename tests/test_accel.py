"""Mixed precision, channels-last and torch.compile (trainwise/accel.py), on the CPU: bf16 autocast
trains and resumes, the fp16 scaler's state survives a resume, channels-last changes the memory
format and not the result, and a failure to compile falls back to eager with one warning line."""

from __future__ import annotations

import functools

import pytest
import torch

import trainwise.accel
import trainwise.train
from trainwise.accel import Accel, to_device
from trainwise.errors import TrainwiseError
from trainwise.study.config import TrainSettings, TrialConfig
from trainwise.train import train


def digits(**train_over) -> TrialConfig:
    """The benchmark CNN (small) on the 8x8 digits: learns to ~95% in a few seconds."""
    return TrialConfig(dataset={"name": "digits"}, model={"name": "cnn", "width": 8}, optimizer={"lr": 0.05},
                       train={"epochs": 6, "batch_size": 64, "threads": 1, **train_over}, seed=0)


def weights(run_dir) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", weights_only=True)


def record_forward(monkeypatch) -> list[dict]:
    """Each forward of the run's model (after its own pre-hooks): the input's memory format, the dtype of the
    first layer's output, and whether autocast was on."""
    seen: list[dict] = []
    real = trainwise.train.build_model

    def build(*a, **kw):
        model = real(*a, **kw)
        first = next(m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
        first.register_forward_hook(lambda m, args, out: seen.append(dict(
            channels_last=args[0].dim() == 4 and args[0].is_contiguous(memory_format=torch.channels_last)
            and not args[0].is_contiguous(),
            dtype=out.dtype, training=m.training)))
        return model

    monkeypatch.setattr(trainwise.train, "build_model", build)
    return seen


def test_defaults_are_the_plain_loop_and_keep_trial_ids():
    acc = Accel(TrainSettings(), torch.device("cpu"))
    assert acc.dtype is None and acc.scaler is None and not acc.channels_last and acc.compile is None
    model = torch.nn.Linear(3, 2)
    assert acc.prepare(model, lambda: torch.zeros(1, 3)) is model and not model._forward_pre_hooks
    assert model._compiled_call_impl is None
    plain = TrialConfig()
    assert TrialConfig(train={"precision": "fp32", "channels_last": False, "compile": False}).config_hash() \
        == plain.config_hash()
    others = {TrialConfig(train=t).config_hash() for t in
              ({"precision": "bf16"}, {"channels_last": True}, {"compile": "default"}, {"compile": "reduce-overhead"})}
    assert len(others) == 4 and plain.config_hash() not in others
    assert TrialConfig(train={"compile": True}).config_hash() == TrialConfig(train={"compile": "default"}).config_hash()


def test_bf16_autocast_trains_on_the_cpu_close_to_fp32(monkeypatch):
    seen = record_forward(monkeypatch)
    fp32 = train(digits(), progress=False)
    assert {s["dtype"] for s in seen} == {torch.float32}
    seen.clear()
    bf16 = train(digits(precision="bf16"), progress=False)
    assert {s["dtype"] for s in seen} == {torch.bfloat16}  # training, evaluation: every forward under autocast
    assert {s["training"] for s in seen} == {True, False}
    assert bf16["test_acc"] >= 0.9 and abs(bf16["test_acc"] - fp32["test_acc"]) <= 0.03, (bf16, fp32)
    assert bf16["test_loss"] != fp32["test_loss"]  # really another computation


def test_bf16_resume_matches_an_uninterrupted_run(tmp_path):
    """Stated tolerance for mixed precision: final weights within rtol 1e-4 / atol 1e-5 and the same
    test accuracy to 1e-3 (on this CPU the resumed bf16 run is in fact bit-identical)."""
    cfg = digits(precision="bf16", epochs=3)
    whole = train(cfg, tmp_path / "whole", progress=False)
    assert train(cfg, tmp_path / "paused", progress=False, until=17)["steps"] == 17
    resumed = train(cfg, tmp_path / "paused", resume=True, progress=False)
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "paused")
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-5), k
    assert abs(whole["test_acc"] - resumed["test_acc"]) <= 1e-3


def test_fp32_resume_stays_bit_exact_with_channels_last(tmp_path):
    cfg = digits(channels_last=True, epochs=3)
    train(cfg, tmp_path / "whole", progress=False)
    train(cfg, tmp_path / "paused", progress=False, until=17)
    train(cfg, tmp_path / "paused", resume=True, progress=False)
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "paused")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fp16_is_refused_on_the_cpu_with_the_fix():
    with pytest.raises(TrainwiseError, match="fp16 needs a CUDA device.*use train.precision: bf16"):
        Accel(TrainSettings(precision="fp16"), torch.device("cpu"))


def test_fp16_scaler_state_is_checkpointed_and_restored(tmp_path, monkeypatch):
    """The fp16 path (autocast + GradScaler) with the CPU refusal lifted: PyTorch's CPU autocast and
    GradScaler run it here. With growth_interval=3 the scale grows every 3 clean steps and backs
    off (skipping the step) on inf gradients, so a resume that lost the scaler's scale or growth
    counter ends elsewhere; the weights match within the mixed-precision tolerance."""
    monkeypatch.setattr(trainwise.accel, "check_precision", lambda precision, device: None)
    monkeypatch.setattr(torch.amp, "GradScaler", functools.partial(torch.amp.GradScaler, growth_interval=3))
    cfg = digits(precision="fp16", epochs=1)  # 22 steps

    def scaler(run: str) -> dict:
        return torch.load(tmp_path / run / "checkpoint.pt", weights_only=True)["accel"]["scaler"]

    train(cfg, tmp_path / "whole", progress=False)
    for run in ("resumed", "forgetful"):
        train(cfg, tmp_path / run, progress=False, until=13)
    fresh = torch.amp.GradScaler("cpu").state_dict()
    assert (scaler("resumed")["scale"], scaler("resumed")["_growth_tracker"]) != (fresh["scale"], 0)
    train(cfg, tmp_path / "resumed", resume=True, progress=False)
    assert scaler("resumed") == scaler("whole")
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "resumed")
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-5), k
    # the check can fail: a resume that does not restore the scaler ends at another scale
    monkeypatch.setattr(Accel, "load_state_dict", lambda self, sd: None)
    train(cfg, tmp_path / "forgetful", resume=True, progress=False)
    assert scaler("forgetful") != scaler("whole")


def rgb(**train_over) -> TrialConfig:
    """3-channel images (with one channel, NCHW and NHWC are the same layout)."""
    return TrialConfig(dataset={"name": "synthetic", "synthetic": {"n_train": 1500, "n_test": 500, "channels": 3,
                                                                   "size": 8, "noise": 0.6}},
                       model={"name": "cnn", "width": 8}, optimizer={"lr": 0.05},
                       train={"epochs": 4, "batch_size": 64, "threads": 1, **train_over}, seed=0)


def test_channels_last_changes_the_memory_format_not_the_accuracy(monkeypatch):
    seen = record_forward(monkeypatch)
    plain = train(rgb(), progress=False)
    assert not any(s["channels_last"] for s in seen)
    seen.clear()
    nhwc = train(rgb(channels_last=True), progress=False)
    assert all(s["channels_last"] for s in seen)  # every forward: training and evaluation
    assert abs(nhwc["test_acc"] - plain["test_acc"]) <= 0.02, (nhwc, plain)
    assert nhwc["train_loss"] == pytest.approx(plain["train_loss"], rel=0.05)


def test_channels_last_first_step_equals_contiguous_to_float_rounding(tmp_path):
    a = train(rgb(epochs=1, eval_every=1), tmp_path / "a", progress=False, until=1)
    b = train(rgb(epochs=1, eval_every=1, channels_last=True), tmp_path / "b", progress=False, until=1)
    assert a == b
    ca = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    cb = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert ca["history"][0]["test_loss"] == pytest.approx(cb["history"][0]["test_loss"], rel=1e-5)
    for k, v in ca["model"].items():
        assert torch.allclose(v.float(), cb["model"][k].float(), rtol=1e-5, atol=1e-6), k


def failing_compile(when: str):
    """A stand-in for torch.compile that fails like a missing C++ compiler would: at compile time
    (torch.compile itself raises), at the first call, or only in eval mode (a later graph)."""
    def compile_(fn, mode=None):
        if when == "compile":
            raise RuntimeError("Dynamo is not supported on this Python")

        def call(*args, **kwargs):
            model = fn.__self__
            if when == "call" or (when == "eval" and not model.training):
                raise RuntimeError("InductorError: CppCompileError: C++ compile error\ncommand: g++ ...")
            return fn(*args, **kwargs)
        return call
    return compile_


@pytest.mark.parametrize("when", ["compile", "call", "eval"])
def test_a_failure_to_compile_falls_back_with_one_warning_line(monkeypatch, capsys, when):
    eager = train(digits(epochs=2), progress=False)
    capsys.readouterr()
    monkeypatch.setattr(torch, "compile", failing_compile(when))
    got = train(digits(epochs=2, compile="default"), progress=False)
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1 and err[0].startswith("trainwise: warning: torch.compile failed (RuntimeError: ")
    assert err[0].endswith("training without it, as with train.compile: false")
    timing = {"wall_time", "cpu_time", "time_to_target"}
    assert {k: v for k, v in got.items() if k not in timing} == {k: v for k, v in eager.items() if k not in timing}


def test_compile_warm_up_leaves_weights_buffers_and_random_state_alone(monkeypatch):
    """The throwaway step that compiles the training graphs (here through a stand-in compiler that
    runs eagerly) changes nothing: the run equals an eager one exactly."""
    monkeypatch.setattr(torch, "compile", lambda fn, mode=None: fn)
    eager = train(digits(epochs=2), progress=False)
    got = train(digits(epochs=2, compile="reduce-overhead"), progress=False)
    timing = {"wall_time", "cpu_time", "time_to_target"}
    assert {k: v for k, v in got.items() if k not in timing} == {k: v for k, v in eager.items() if k not in timing}


@pytest.mark.slow
def test_torch_compile_really_compiles_on_this_cpu(tmp_path, monkeypatch, capsys):
    """With a C++ compiler (this machine has g++), inductor compiles the model (~10 s here): the run
    goes through the compiled call without falling back, model.pt has the eager state-dict keys,
    and the accuracy matches eager's."""
    built = []
    real = trainwise.train.build_model
    monkeypatch.setattr(trainwise.train, "build_model", lambda *a, **kw: built.append(real(*a, **kw)) or built[-1])
    cfg = dict(dataset={"name": "synthetic", "synthetic": {"n_train": 512, "n_test": 128, "size": 8}},
               model={"name": "mlp", "hidden": 32, "depth": 1}, optimizer={"lr": 0.1},
               train={"epochs": 3, "batch_size": 64, "threads": 1, "eval_batch_size": 128}, seed=0)
    eager = train(TrialConfig(**cfg), tmp_path / "eager", progress=False)
    got = train(TrialConfig(**{**cfg, "train": {**cfg["train"], "compile": "default"}}), tmp_path / "compiled",
                progress=False)
    assert "torch.compile failed" not in capsys.readouterr().err
    assert trainwise.accel.compiled(built[-1]) and not trainwise.accel.compiled(built[0])
    assert weights(tmp_path / "eager").keys() == weights(tmp_path / "compiled").keys()
    assert abs(got["test_acc"] - eager["test_acc"]) <= 0.02 and got["test_acc"] > 0.5


def test_to_device_on_the_cpu_is_the_tensor_itself():
    t = torch.arange(5)
    assert to_device(t, torch.device("cpu")) is t and to_device(t, "cpu") is t


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the CPU tests above cover these code paths)")
@pytest.mark.parametrize("over", [{"precision": "fp16"}, {"precision": "bf16", "channels_last": True},
                                  {"compile": "reduce-overhead"}], ids=str)
def test_on_cuda_each_setting_trains_and_resumes_within_tolerance(tmp_path, over):
    if over.get("precision") == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    cfg = digits(device="cuda", epochs=3, **over)
    whole = train(cfg, tmp_path / "whole", progress=False)
    train(cfg, tmp_path / "paused", progress=False, until=17)
    resumed = train(cfg, tmp_path / "paused", resume=True, progress=False)
    assert whole["test_acc"] >= 0.85 and abs(whole["test_acc"] - resumed["test_acc"]) <= 0.01
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "paused")
    for k in a:  # GPU kernels may be nondeterministic: a looser bound than on the CPU
        assert torch.allclose(a[k].float(), b[k].float(), rtol=1e-3, atol=1e-4), k


def test_grad_clip_caps_the_gradients_global_norm_before_the_step():
    torch.manual_seed(0)
    model = torch.nn.Linear(20, 3)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0, weight_decay=0)
    loss = (model(torch.randn(8, 20)) * 100).pow(2).mean()  # a gradient norm far above 0.5
    Accel(TrainSettings(), torch.device("cpu")).step(loss, opt, clip=0.5)
    moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])
    assert float(moved.norm()) == pytest.approx(0.5, rel=1e-5)  # lr 1: the step is the clipped gradient


def test_grad_clip_is_a_setting_and_stays_out_of_the_default_trial_id():
    assert digits().config_hash() == TrialConfig(**{**digits().model_dump(), "optimizer": {
        **digits().optimizer.model_dump(), "grad_clip": None}}).config_hash()
    assert digits().model_copy(update={"optimizer": digits().optimizer.model_copy(
        update={"grad_clip": 2.0})}).config_hash() != digits().config_hash()
