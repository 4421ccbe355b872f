"""The training loop: one budgeted run from a ``TrialConfig`` to a result row.

Read it top to bottom; each step of the data's path is one call:

    sampler.next_batch  -> which sample indices (and importance weights) this step uses; samplers
                           may score candidates (``scorer``) or take trial steps (``lookahead``)
    task.batch          -> the batch from the dataset tensors, as float on the device
    transform           -> augmentation / mixing of inputs and soft targets
    model               -> logits, or embeddings (under ``train.precision``'s autocast; accel.py)
    task.loss           -> per-sample loss (soft-target CE, or hinges on in-batch negatives),
                           reduced with the weights (task.reduce)
    sampler.feedback    -> per-sample loss and p(true class) back to the sampler
    lr_at + opt.step    -> update under the budget-aware learning-rate schedule

The run gets exactly ``budget.total_steps`` optimizer steps, E epochs of ⌊b·N⌋ samples
(Arazo et al., BMVC 2021), or with ``train.budget_unit`` the same budget in samples
backpropagated or forward+backward work.
It evaluates every ``eval_every`` steps, checkpoints atomically (every ``checkpoint_every``
steps or ``checkpoint_seconds`` of training, whichever comes first), stops at a requested
interruption (``trainwise.interrupt``) after checkpointing, and resumes from a checkpoint to the
same final weights as an uninterrupted run.

What differs between classification and retrieval (the batch, the loss, the metrics) is the
run's ``task`` (``trainwise/tasks.py``); everything else is shared.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .accel import Accel, to_device
from .augment import TRANSFORMS, Compose, TransformContext
from .augment.tta_sum import evaluate_tta_sum
from .budget import lr_at
from .data import TensorData, load_dataset
from .data.loader import rows
from .errors import CheckpointError, DivergedError, TrainwiseError
from .gradstats import GradientVarianceMeter, GradStats
from .interrupt import Interrupted, requested, signum
from .io import atomic_torch_save, atomic_write_text, remove_stale_tmp
from .lookahead import Lookahead
from .models import build_model
from .runlog import RunLog
from .sampling import SAMPLERS, SamplerContext, Selection
from .tasks import make_task
from .config import TrialConfig

CHECKPOINT = "checkpoint.pt"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainwiseError(f"device {name!r} requested but CUDA is not available; set train.device: cpu")
    return torch.device(name)


def build_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
    opt = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return opt(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


CHECKPOINT_KEYS = ("config_hash", "model", "optimizer", "sampler", "transform", "gen", "torch_rng", "state",
                   "history")


def load_checkpoint(path: Path, config_hash: str) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, corrupt, or not a checkpoint at all
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({type(e).__name__}); delete it to start the run over"
        ) from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in CHECKPOINT_KEYS):
        raise CheckpointError(f"{path} is not a trainwise checkpoint; delete it or use another --out directory")
    if ckpt["config_hash"] != config_hash:
        raise CheckpointError(
            f"checkpoint {path} was written by another config (hash {ckpt['config_hash']}, this config "
            f"{config_hash}); resume with the original config or use another --out directory"
        )
    return ckpt


def train(cfg: TrialConfig, run_dir: str | Path | None = None, resume: bool = False,
          progress: bool | None = None, data: TensorData | None = None, until: int | None = None,
          on_step=None) -> dict:
    """Run one budgeted training trial and return its result row (metrics only, JSON-serialisable).

    ``until``: stop after that many steps, checkpoint, and return only ``steps``/``total_steps``;
    calling again with ``resume=True`` continues the same run (how ``multisplit`` interleaves K runs).
    ``on_step(step, total)``: called with the starting step, then after every optimizer step (a
    study's progress display).
    Raises ``Interrupted`` (after checkpointing) when ``trainwise.interrupt`` was requested.
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None:
        remove_stale_tmp(run_dir)  # half-written files of a run killed mid-write
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = pick_device(cfg.train.device)
    torch.manual_seed(cfg.seed)

    # ---- data, model, optimizer, budget, sampler, transforms, loss
    if data is not None and cfg.dataset.val_fraction > 0 and data.x_val is None:
        raise TrainwiseError("train(data=...) got data without the validation split dataset.val_fraction "
                             "asks for; pass load_dataset(cfg.dataset) or use trainwise.fit(config, data=...)")
    data = data or load_dataset(cfg.dataset)
    if cfg.dataset.fingerprint:  # a user dataset: refuse to train on other data than the trial names
        cfg.with_fingerprint(data)
    task = make_task(cfg, data)  # classification or retrieval: batch, loss, metrics (tasks.py)
    accel = Accel(cfg.train, device)  # precision, channels-last, torch.compile (accel.py)
    data = data.to(device)
    mean, std = data.channel_stats()
    model = build_model(cfg.model.name, data.input_shape, data.num_classes, mean, std,
                        **cfg.model.settings).to(device)
    model = accel.prepare(model, lambda: rows(data.x_train, torch.arange(min(cfg.train.batch_size, data.n_train)),
                                              device))
    opt = build_optimizer(model, cfg.optimizer)
    budget = cfg.make_budget(data.n_train)
    total = budget.total_steps
    sampler = SAMPLERS.build(cfg.sampler, SamplerContext(budget, cfg.seed, data.y_train.cpu(), device))
    tctx = TransformContext(data.num_classes, data.input_shape, budget, device, has_val=data.x_val is not None)
    transform = Compose([TRANSFORMS.build(spec, tctx) for spec in cfg.augment])
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    eval_every = cfg.train.eval_every or budget.steps_per_full_epoch
    ckpt_every = cfg.train.checkpoint_every or eval_every
    wants_feedback = getattr(sampler, "wants_feedback", False)
    schedule_kw = cfg.schedule.kwargs()
    chash = cfg.config_hash()

    # ---- run state (everything a checkpoint must restore)
    s = dict(step=0, epoch=-1, step_in_epoch=0, epoch_steps=0, samples_forwarded=0,
             samples_backpropagated=0, train_time=0.0, cpu_time=0.0, best_test=0.0, time_to_target=None,
             train_loss=float("nan"), loss_sum=0.0, loss_n=0, step_cost=None, total=total)
    history: list[dict] = []
    ckpt_path = run_dir / CHECKPOINT if run_dir is not None else None
    if resume and ckpt_path is not None and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, chash)
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sampler.load_state_dict(ck["sampler"])
            transform.load_state_dict(ck["transform"])
            gen.set_state(ck["gen"])
            torch.set_rng_state(ck["torch_rng"])
            accel.load_state_dict(ck.get("accel", {}))
            s.update(ck["state"])
            if "best_test_acc" in ck["state"]:  # written before the task seam named it best_test
                s["best_test"] = s.pop("best_test_acc")
            history = list(ck["history"])
        except Exception as e:  # the right hash but the wrong contents (keys, shapes, types)
            raise CheckpointError(f"checkpoint {ckpt_path} does not fit this run ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:200]}); delete it to start the run over") from None
        threads = ck.get("threads")
        if threads is not None and threads != torch.get_num_threads():
            print(f"trainwise: warning: {ckpt_path} was written with {threads} torch threads, resuming with "
                  f"{torch.get_num_threads()}: the final weights may differ in the last bits from an "
                  f"uninterrupted run (set train.threads to pin them)", file=sys.stderr)
    total = s["total"]
    have_checkpoint = ckpt_path is not None and ckpt_path.exists()

    def save_checkpoint() -> None:
        nonlocal have_checkpoint, last_checkpoint
        last_checkpoint = time.monotonic()
        if ckpt_path is None:
            return
        atomic_torch_save(dict(
            config_hash=chash, model=model.state_dict(), optimizer=opt.state_dict(),
            sampler=sampler.state_dict(), transform=transform.state_dict(), gen=gen.get_state(),
            torch_rng=torch.get_rng_state(), state=dict(s), history=history,
            threads=torch.get_num_threads(), accel=accel.state_dict()), ckpt_path)
        have_checkpoint = True

    @torch.no_grad()
    def scorer(idx: torch.Tensor, probs: bool = False) -> tuple[torch.Tensor, ...]:
        """Gradient-free forward pass in eval mode for samplers that score candidates (counted);
        ``probs=True`` also returns the softmax (for gradient-norm scores). Classification only: the
        samplers that score declare it (``tasks``), and retrieval refuses them (tasks.py)."""
        model.eval()
        with accel.autocast():
            logits = accel.fp32(model(rows(data.x_train, idx, device)))  # float on the device, whatever the storage
        model.train()
        y = data.y_train[to_device(idx, device)]
        s["samples_forwarded"] += len(idx)
        p = logits.softmax(1)
        out = F.cross_entropy(logits, y, reduction="none"), p.gather(1, y[:, None]).squeeze(1)
        return (*out, p) if probs else out

    def trial_loss(idx: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Mean training loss of samples ``idx`` (clean; weighted when ``weight`` is given), for the
        look-ahead's trial steps, per-example gradient statistics and the gradient-variance meter."""
        b = task.batch(data, Selection(idx, weight))
        with accel.autocast():
            logits = accel.fp32(model(b.x))
        return task.reduce(task.loss(logits, b, s["epoch"]), b.weight)

    def count(forwarded: int, backpropagated: int) -> None:
        s["samples_forwarded"] += forwarded
        s["samples_backpropagated"] += backpropagated

    def step_lr() -> float:
        """The learning rate of the step about to be taken, as planned so far."""
        lr = lr_at(s["step"], s["total"], cfg.optimizer.lr, cfg.schedule.name, **schedule_kw)
        return transform.adjust_lr(s["step"], s["total"], cfg.optimizer.lr, lr)

    # samplers that take trial steps (max-loss-delta) also get a look-ahead: snapshot, step, measure, restore
    wants_lookahead = getattr(sampler, "wants_lookahead", False)
    probes = ({"lookahead": Lookahead(model, opt, trial_loss, count, step_lr, cfg.optimizer.grad_clip)}
              if wants_lookahead else {})
    # samplers that cluster per-example gradients (gradient-clustering) get eval-mode per-example passes
    gradstats = None
    if getattr(sampler, "wants_gradstats", False):
        gradstats = GradStats(model, trial_loss, data.n_train, count, charged=cfg.train.budget_unit != "steps")
        sampler.attach(gradstats)
    gv = cfg.train.gradient_variance  # the gradient-variance meter: measures at fixed weights, changes nothing
    meter = gv and GradientVarianceMeter(gv.every, gv.draws, model, trial_loss, data.n_train,
                                         cfg.train.batch_size, cfg.seed, gradstats)

    metric = task.metric  # what the study ranks by: acc, or R-sum for retrieval

    def do_eval() -> None:
        with accel.autocast():
            test = task.evaluate(model, data.x_test, data.y_test, cfg.train.eval_batch_size)
        s["best_test"] = max(s["best_test"], test[metric])
        rec = dict(step=s["step"], epoch=s["epoch"], lr=opt.param_groups[0]["lr"], train_loss=s["train_loss"],
                   **{f"test_{k}": v for k, v in test.items()}, time=s["train_time"])
        if data.x_val is not None:
            with accel.autocast():
                val = task.evaluate(model, data.x_val, data.y_val, cfg.train.eval_batch_size)
            rec.update({f"val_{k}": v for k, v in val.items()})
        target = cfg.target_accuracy  # time to target: on validation accuracy when there is a split
        if target is not None and s["time_to_target"] is None and rec.get("val_acc", test[metric]) >= target:
            s["time_to_target"] = s["train_time"]
        transform.on_eval(rec, model)  # may add fields (e.g. cascade K) and load best-so-far weights
        task.after_eval(rec)  # retrieval: the loss in use, collapse detection
        history.append(rec)
        log.record(rec, history)

    # ---- the budget in ``train.budget_unit``: optimizer steps (default), samples backpropagated, or
    # forward+backward work (per sample a forward counts 1/3 and a backward 2/3 of a training step,
    # scoring forwards included), all sized T*B for the budget's T steps. The LR schedule is laid
    # over ``plan()`` steps.
    unit = cfg.train.budget_unit
    limit = budget.total_steps * (1 if unit == "steps" else cfg.train.batch_size)

    def spent() -> float:
        if unit == "steps":
            return s["step"]
        if unit == "backprop_samples":
            return s["samples_backpropagated"]
        return s["samples_forwarded"] / 3 + 2 * s["samples_backpropagated"] / 3

    def plan(next_cost: int) -> int:
        """Steps of the run: budget.total_steps, or the sampler's own plan (InfoBatch's shrinking
        epochs), or for work units: this step (whose scoring forwards are spent and whose training
        costs ``next_cost``), then the steps the work left buys at the recent cost of a step (an
        average over about the last 5 steps; before the first, the sampler's expected cost), less
        the one-off work the sampler reserves (gradient-clustering's snapshots to come). A step
        that uses up the budget is planned as the last, so it gets ``final_lr``."""
        if unit == "steps":
            own = sampler.planned_steps() if hasattr(sampler, "planned_steps") else budget.total_steps
            return min(own, budget.total_steps)
        if s["step_cost"] is None:
            hook = getattr(sampler, "cost_per_step", None)
            s["step_cost"] = hook(unit) if hook else float(cfg.train.batch_size)
        reserved = sampler.reserved_work(unit) if hasattr(sampler, "reserved_work") else 0  # snapshots to come
        left = limit - spent() - next_cost - reserved
        return s["step"] + 1 + max(0, math.ceil(left / s["step_cost"] - 1e-9))

    def budget_left() -> bool:
        return s["step"] < plan(0) if unit == "steps" else spent() < limit

    log = RunLog(run_dir, total, f"{cfg.regimen} b={cfg.budget} seed={cfg.seed}", progress, s["step"], metric)
    model.train()
    last_checkpoint = time.monotonic()
    saved_step = s["step"]
    if on_step is not None:
        on_step(s["step"], total)  # where this run starts: 0, or the step it resumes at
    try:
        while budget_left() and (until is None or s["step"] < until):
            if requested():  # Ctrl-C / SIGTERM: keep the progress, then stop
                if s["step"] > saved_step:
                    save_checkpoint()
                raise Interrupted(signum())
            t0, c0 = time.perf_counter(), time.process_time()
            if s["step_in_epoch"] >= s["epoch_steps"]:
                s["epoch"] += 1
                s["epoch_steps"] = sampler.begin_epoch(s["epoch"])
                s["step_in_epoch"] = 0
                if note := task.begin_epoch(s["epoch"]):  # e.g. retrieval's switch after its warm-up
                    log.note(f"step {s['step']}: {note}")
            spent_before = spent()
            sel = sampler.next_batch(s["step_in_epoch"], scorer, **probes)
            total = s["total"] = plan(len(sel.idx))
            transform.on_step(s["step"], total)
            lr = lr_at(s["step"], total, cfg.optimizer.lr, cfg.schedule.name, **schedule_kw)
            for g in opt.param_groups:
                g["lr"] = transform.adjust_lr(s["step"], total, cfg.optimizer.lr, lr)
            batch = task.batch(data, sel)
            batch = transform(batch, gen)
            accel.begin_step()
            with accel.autocast():
                logits = accel.fp32(model(batch.x))  # the loss and feedback in float32 under bf16/fp16
            transform.observe(logits, batch)
            per_sample = task.loss(logits, batch, s["epoch"])
            loss = task.reduce(per_sample, batch.weight)
            accel.step(loss, opt, cfg.optimizer.grad_clip)  # zero_grad, backward, clip, step (fp16: scaled)
            loss_value = loss.item()  # the step's one host sync, once its work is queued
            if not math.isfinite(loss_value):
                kept = f"; the last good checkpoint is kept in {ckpt_path}" if have_checkpoint else ""
                raise DivergedError(f"loss became {loss_value} at step {s['step']} "
                                    f"(lr {opt.param_groups[0]['lr']:.3g}); lower optimizer.lr{kept}")
            if wants_feedback:
                p_true, probs = task.feedback(logits, batch)  # retrieval: None (loss-only samplers)
                sampler.feedback(batch.idx, per_sample.detach(), p_true, probs)

            s["samples_forwarded"] += len(batch)
            s["samples_backpropagated"] += len(batch)
            if unit != "steps":
                s["step_cost"] = 0.8 * s["step_cost"] + 0.2 * (spent() - spent_before)
            s["step"] += 1
            s["step_in_epoch"] += 1
            s["loss_sum"] += loss_value
            s["loss_n"] += 1
            s["train_time"] += time.perf_counter() - t0
            s["cpu_time"] += time.process_time() - c0
            log.step(s["step"])
            if on_step is not None:
                on_step(s["step"], total)

            if meter and meter.due(s["step"]):  # gradient variance at these weights; the run is left as it was
                history.append(meter.measure(s, sampler, scorer, probes))
                log.record(history[-1], history)
            finished = not budget_left()
            if s["step"] % eval_every == 0 or finished or transform.wants_eval(s["step"], total):
                s["train_loss"] = s["loss_sum"] / max(s["loss_n"], 1)
                s["loss_sum"], s["loss_n"] = 0.0, 0
                do_eval()
            timed = cfg.train.checkpoint_seconds and time.monotonic() - last_checkpoint >= cfg.train.checkpoint_seconds
            if s["step"] % ckpt_every == 0 or finished or s["step"] == until or timed:
                save_checkpoint()
                saved_step = s["step"]
    finally:
        log.close()

    if budget_left():  # paused at ``until``: the checkpoint holds the run
        return dict(steps=s["step"], total_steps=s["total"])
    last = history[-1]  # the final evaluation
    result = dict(
        steps=s["step"], total_steps=s["total"], epochs=s["epoch"] + 1,
        samples_forwarded=s["samples_forwarded"], samples_backpropagated=s["samples_backpropagated"],
        wall_time=s["train_time"], cpu_time=s["cpu_time"], train_loss=s["train_loss"],
        **{k: v for k, v in last.items() if k.startswith("test_")},
        **{f"best_test_{metric}": s["best_test"], "time_to_target": s["time_to_target"]},
    )
    result.update({f"val_{k}": last[f"val_{k}"] for k in task.val_keys if f"val_{k}" in last})
    # the final model on its clean training set: train vs test accuracy says under- or overfitting
    with accel.autocast():
        result[f"train_{metric}"] = task.evaluate(model, data.x_train, data.y_train, cfg.train.eval_batch_size)[metric]
    result.update(task.summary(history))  # retrieval: whether it collapsed
    result.update({k: last[k] for k in ("K", "train_topk_acc") if k in last})
    if meter:
        result["gradient_variance"] = [h for h in history if h.get("kind") == "gradient_variance"]
    if cfg.train.tta_sum:  # test-time sum augmentation (Cascading Sum), next to the clean metric
        with accel.autocast():
            result["test_loss_tta_sum"], result["test_acc_tta_sum"] = evaluate_tta_sum(
                model, data.x_test, data.y_test, data.x_train, cfg.train.tta_sum,
                torch.Generator().manual_seed(cfg.seed + 2), cfg.train.eval_batch_size)
    if cfg.robustness is not None:  # attacks on the final model, in float32: robust_acc@<eps>, robust_warnings
        from .robust.evaluate import robust_metrics

        result.update(robust_metrics(model, data.x_test, data.y_test, cfg.robustness, cfg.seed))
    if run_dir is not None:
        atomic_torch_save(model.state_dict(), run_dir / "model.pt")
        atomic_write_text(run_dir / "result.json", json.dumps(result, indent=2))
    return result
