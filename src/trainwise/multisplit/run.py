"""The multi-split driver: K split workers, transfer rounds, one output model.

Zhang et al., "A Novel DNN Training Framework via Data Sampling and Multi-Task
Optimization", arXiv:2007.01016 (docs/methods.md §6). One run of one arm at one seed:

1. Split the gross training set K times into (train, validation) pairs (stratified,
   ``val_fraction`` held out, split seed ``1000 * seed + k``); the test set is untouched.
2. Train K models of the same architecture, one per split, with the ordinary training loop.
   ``init: per_split`` (default) seeds split k's run with ``process_seed(seed, k)``: its
   initial weights and its random streams (sample order, augmentation) differ from the other
   splits', so transfer has diverse parameters to offer. ``init: shared`` starts all K from
   the trial seed's weights and streams (they then differ only by their data).
3. Every ``every`` steps (default: once per budgeted epoch) each worker scores its
   parameters on its own validation split and keeps its best snapshot; with transfer on,
   each worker is then offered the others' parameters (``offer: all``) or those of the
   worker with the best validation accuracy (``offer: best``) and adopts by the rule in
   ``transfer.py``. Every offer and decision is a line of ``offers.jsonl``.
4. Output: among the K best-validation snapshots, the one with the best mean accuracy
   over all K validation sets; only it is the method's answer. For the report, every
   process's snapshot is also scored on the test set and its own training split: the
   "mean process" columns (mean over the K processes) show what transfer did to the average
   process, not only to the one picked.

Budget: the arm's total budget ``b`` is split evenly, each of the K runs gets ``b / K`` of
the full schedule (E epochs over its split), so every arm does the same number of optimizer
steps (up to K·E steps of per-epoch rounding) as one conventional run at budget ``b``. An arm
with ``split_budget: full`` instead gives each run the whole budget (K times the compute;
``total_steps`` in the result says so), the setting of K parallel workers each training fully.
Validation scoring and transfer cost forward passes only; they are counted in
``val_forwards`` and in the wall time, not in the step budget.

With K = 1 and no transfer this is the conventional baseline: one split, one model,
best-validation checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import torch

from ..io import atomic_write_bytes, atomic_write_text
from .config import ArmSettings, MultiSplitConfig
from .executors import make_pool
from ..stats import detectable, paired
from .transfer import better


def split_seed(seed: int, k: int) -> int:
    return 1000 * seed + k


def process_seed(seed: int, k: int) -> int:
    """Split k's trial seed under ``init: per_split``: split 0 keeps the arm's seed (so K = 1 is the
    conventional run); the stride keeps it clear of the ``seed + 1``, ``seed + 2`` streams that
    train() derives and of other seeds' processes."""
    return seed + 1_000_003 * k


def trial_dict(cfg: MultiSplitConfig, arm: ArmSettings, seed: int, k: int, threads: int) -> dict:
    common = cfg.model_dump(include={"dataset", "model", "optimizer", "schedule", "train", "loss",
                                     "target_accuracy"}, mode="json")
    common["train"] = {**common["train"], "threads": threads}
    return dict(common, regimen=f"{arm.name}/split{k}", sampler=cfg.sampler, augment=cfg.augment,
                budget=cfg.budget / arm.k if arm.split_budget == "shared" else cfg.budget,
                seed=process_seed(seed, k) if arm.init == "per_split" else seed)


def default_threads(cfg: MultiSplitConfig, arm: ArmSettings) -> int:
    return cfg.train.threads or max(1, (os.cpu_count() or 1) // arm.k)


def round_steps(total: int, every: int) -> list[int]:
    """The steps at which rounds happen: every ``every`` steps, and the run's end."""
    out = list(range(every, total, every))
    return out + [total]


def run_arm(cfg: MultiSplitConfig, arm: ArmSettings, seed: int, out: Path, executor: str = "inprocess",
            address: str | None = None, echo=print) -> dict:
    """One multi-split run; writes ``out/`` (split runs, offers.jsonl, model.pt, result.json)."""
    if out.exists():
        shutil.rmtree(out)  # a half-finished run starts over: transfer rounds are not resumable
    out.mkdir(parents=True)
    threads = default_threads(cfg, arm)
    inits = [(trial_dict(cfg, arm, seed, k, threads), str(out / f"split{k}"), arm.val_fraction,
              split_seed(seed, k), threads) for k in range(arm.k)]
    t0 = time.perf_counter()
    saved_threads = torch.get_num_threads()
    pool = make_pool(executor, inits, address)
    try:
        info = pool.call("info", [()] * arm.k)
        total = min(i["total_steps"] for i in info)
        every = arm.every or max(1, total // info[0]["epochs"])
        log_lines: list[str] = []
        rounds = round_steps(total, every)
        for r, step in enumerate(rounds):
            last = r == len(rounds) - 1  # the last round trains to the budget's end, whatever its unit
            reports = pool.call("advance", [(None if last else step,)] * arm.k)
            if arm.transfer == "none" or last:
                continue
            blobs = pool.share(pool.call("params", [()] * arm.k))
            if arm.offer == "best":
                best = max(range(arm.k), key=lambda i: (reports[i]["val_acc"], -reports[i]["val_loss"], -i))
                donors = [[] if j == best else [best] for j in range(arm.k)]
            else:
                donors = [[i for i in range(arm.k) if i != j] for j in range(arm.k)]
            decisions = pool.call("consider", [(arm.transfer, arm.alpha, *[blobs[i] for i in d]) for d in donors])
            for j, (d, recs) in enumerate(zip(donors, decisions)):
                for i, rec in zip(d, recs):
                    log_lines.append(json.dumps(dict(round=r, step=step, receiver=j, donor=i,
                                                     rule=arm.transfer, **rec)) + "\n")
            atomic_write_text(out / "offers.jsonl", "".join(log_lines))

        # ---- output: the snapshot with the best mean score over all K validation sets
        cands = pool.share(pool.call("candidate", [()] * arm.k))
        own = pool.call("candidate_score", [()] * arm.k)
        matrix = pool.call("score_all", [tuple(cands)] * arm.k)  # matrix[j][i]: candidate i on val j
        means = [[sum(matrix[j][i][m] for j in range(arm.k)) / arm.k for m in (0, 1)] for i in range(arm.k)]
        chosen = 0
        for i in range(1, arm.k):
            if better(tuple(means[i]), tuple(means[chosen])):
                chosen = i
        blob = pool.call_one(chosen, "candidate", ())
        tests = pool.call("test", [(c,) for c in cands])  # each process's snapshot, for the report
        finals = pool.call("final", [()] * arm.k)
    finally:
        pool.close()
        torch.set_num_threads(saved_threads)
    wall = time.perf_counter() - t0
    atomic_write_bytes(out / "model.pt", blob)
    results = [f["result"] for f in finals]
    adopted = sum(json.loads(line)["adopted"] for line in log_lines)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    per = {f"{m}_per_split": [t[m] for t in tests] for m in ("test_acc", "train_acc")}
    per["val_own_acc_per_split"] = [o[0] for o in own]
    per["final_test_acc_per_split"] = [r["test_acc"] for r in results]
    result = dict(
        arm=arm.name, seed=seed, k=arm.k, transfer=arm.transfer, init=arm.init, split_budget=arm.split_budget,
        executor=executor, threads=threads,
        chosen=chosen, test_acc=tests[chosen]["test_acc"], test_loss=tests[chosen]["test_loss"],
        train_acc=tests[chosen]["train_acc"],
        val_own_acc=own[chosen][0], val_mean_acc=means[chosen][0], val_mean_loss=means[chosen][1],
        mean_process_test_acc=mean(per["test_acc_per_split"]),
        mean_process_final_test_acc=mean(per["final_test_acc_per_split"]),
        mean_process_val_acc=mean(per["val_own_acc_per_split"]),
        mean_process_train_acc=mean(per["train_acc_per_split"]),
        val_matrix=[[matrix[j][i][0] for i in range(arm.k)] for j in range(arm.k)],
        steps_per_split=[r["steps"] for r in results], total_steps=sum(r["steps"] for r in results),
        rounds=len(rounds), every=every, offers=len(log_lines), adopted=adopted,
        samples_backpropagated=sum(r["samples_backpropagated"] for r in results),
        samples_forwarded=sum(r["samples_forwarded"] for r in results),
        val_forwards=sum(f["val_forwards"] for f in finals),
        train_time=sum(r["wall_time"] for r in results), wall_time=wall, **per,
        fingerprint=fingerprint(cfg, arm),
    )
    atomic_write_text(out / "result.json", json.dumps(result, indent=2))
    echo(f"  {arm.name} seed={seed}: test_acc {result['test_acc']:.4f} (val own {result['val_own_acc']:.4f}, "
         f"mean-K {result['val_mean_acc']:.4f}; mean process test {result['mean_process_test_acc']:.4f}), "
         f"{adopted}/{len(log_lines)} offers adopted, {wall:.0f}s")
    return result


def fingerprint(cfg: MultiSplitConfig, arm: ArmSettings) -> str:
    """Hash of everything that shapes one arm's runs (not the seed): a stored result is reused only
    by the same settings."""
    blob = json.dumps([cfg.model_dump(mode="json", exclude={"name", "seeds", "arms", "pairs"}),
                       arm.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_multisplit(cfg: MultiSplitConfig, out: Path, executor: str = "inprocess", address: str | None = None,
                   echo=print) -> list[dict]:
    """Every arm at every seed; finished runs (``result.json`` of the same settings) are kept, not
    rerun. Writes ``results.json`` (one row per run), ``paired.json`` and ``report.md``."""
    rows = []
    for arm in cfg.arms:
        for seed in cfg.seeds:
            d = out / f"{arm.name}-seed{seed}"
            if (d / "result.json").is_file():
                row = json.loads((d / "result.json").read_text())
                if row.get("fingerprint") == fingerprint(cfg, arm):
                    rows.append(row)
                    echo(f"  {arm.name} seed={seed}: already done")
                    continue
            rows.append(run_arm(cfg, arm, seed, d, executor, address, echo))
    atomic_write_text(out / "results.json", json.dumps(rows, indent=2))
    atomic_write_text(out / "paired.json", json.dumps(comparisons(cfg, rows), indent=2))
    atomic_write_text(out / "report.md", summary_markdown(cfg, rows))
    return rows


PAIRED_METRICS = {
    "test_acc": "output model, test",
    "mean_process_test_acc": "mean process (best snapshot), test",
    "mean_process_final_test_acc": "mean process (final model), test",
    "mean_process_val_acc": "mean process, own validation",
}


def comparisons(cfg: MultiSplitConfig, rows: list[dict]) -> list[dict]:
    """For each (arm, baseline) of ``cfg.paired_arms()`` and metric: the per-seed differences
    arm − baseline (same seed, hence the same K splits: paired), their mean, sd, 95% t interval
    and the true difference that many seeds with that spread could detect (80% power, 5% two-sided)."""
    by = {(r["arm"], r["seed"]): r for r in rows}
    out = []
    for a, b in cfg.paired_arms():
        seeds = [s for s in cfg.seeds if (a, s) in by and (b, s) in by]
        for m in PAIRED_METRICS if seeds else []:
            p = paired([by[a, s][m] for s in seeds], [by[b, s][m] for s in seeds])
            out.append(dict(arm=a, baseline=b, metric=m, seeds=seeds, **p,
                            detectable=None if p["sd"] is None else detectable(p["sd"], p["n"])))
    return out


def run_study_trial(trial, run_dir: str | Path) -> dict:
    """A study trial whose regimen has ``multisplit:`` settings: one arm at the trial's seed,
    run in-process into ``run_dir``; returns a study result row (the standard metrics, steps
    and samples summed over the K runs, validation = mean over the K validation sets, and the
    mean process's test accuracy)."""
    common = trial.model_dump(include={"dataset", "model", "optimizer", "schedule", "train", "loss",
                                       "target_accuracy"})
    cfg = MultiSplitConfig(**common, name=trial.regimen, sampler=trial.sampler, augment=trial.augment,
                           budget=trial.budget, seeds=[trial.seed],
                           arms=[ArmSettings(name=trial.regimen, **trial.multisplit)])
    r = run_arm(cfg, cfg.arms[0], trial.seed, Path(run_dir), "inprocess", echo=lambda *a: None)
    return dict(
        steps=r["total_steps"], total_steps=r["total_steps"], epochs=trial.train.epochs,
        samples_forwarded=r["samples_forwarded"], samples_backpropagated=r["samples_backpropagated"],
        wall_time=r["train_time"], train_loss=None, test_loss=r["test_loss"], test_acc=r["test_acc"],
        best_test_acc=r["test_acc"], time_to_target=None, val_acc=r["val_mean_acc"],
        val_own_acc=r["val_own_acc"], mean_process_test_acc=r["mean_process_test_acc"],
        k=r["k"], offers=r["offers"], adopted=r["adopted"],
    )


def summary_markdown(cfg: MultiSplitConfig, rows: list[dict]) -> str:
    """Per arm: mean and spread over seeds of the output model's test accuracy, the mean process's,
    and the validation estimates; then the paired arm − baseline differences."""
    import statistics as st

    def ms(xs):
        return f"{st.mean(xs):.4f} ± {st.stdev(xs):.4f}" if len(xs) > 1 else f"{xs[0]:.4f}"

    def pts(x, sign="+"):  # accuracy points
        return "–" if x is None else f"{100 * x:{sign}.2f}"

    lines = [f"# multisplit: {cfg.name}", "",
             "| arm | K | transfer | init | seeds | test acc (output) | mean process test (best snapshot) "
             "| mean process test (final) | train acc (output) | val (own split) | val (mean of K) "
             "| mean process val (own) | offers adopted | total steps | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for arm in cfg.arms:
        rs = [r for r in rows if r["arm"] == arm.name]
        if not rs:
            continue
        col = lambda m: ms([r[m] for r in rs])  # noqa: E731
        lines.append(
            f"| {arm.name} | {arm.k} | {arm.transfer} | {arm.init} | {len(rs)} | {col('test_acc')} | "
            f"{col('mean_process_test_acc')} | {col('mean_process_final_test_acc')} | {col('train_acc')} | "
            f"{col('val_own_acc')} | {col('val_mean_acc')} | {col('mean_process_val_acc')} | "
            f"{sum(r['adopted'] for r in rs)}/{sum(r['offers'] for r in rs)} | "
            f"{rs[0]['total_steps']} | {st.mean(r['wall_time'] for r in rs):.0f} |")
    cmp = comparisons(cfg, rows)
    if cmp:
        lines += ["", "Paired differences, arm − baseline at the same seed, in accuracy points (95% t interval; "
                  "'detectable': the true difference a paired t test finds with 80% power at this spread):", "",
                  "| arm − baseline | metric | seeds | per seed | mean | sd | 95% interval | detectable |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in cmp:
            lines.append(f"| {c['arm']} − {c['baseline']} | {PAIRED_METRICS[c['metric']]} | {c['n']} | "
                         f"{', '.join(pts(d) for d in c['diffs'])} | {pts(c['mean'])} | "
                         f"{pts(c['sd'], '')} | [{pts(c['lo'])}, {pts(c['hi'])}] | {pts(c['detectable'], '')} |")
    lines += ["", "Per run: " + ", ".join(f"{r['arm']}/s{r['seed']} test {r['test_acc']:.4f}" for r in rows), ""]
    return "\n".join(lines)


__all__ = ["run_arm", "run_multisplit", "run_study_trial", "summary_markdown", "comparisons", "split_seed",
           "process_seed", "trial_dict", "round_steps", "fingerprint"]
