"""``trainwise advise`` live: calibrate, run advise's rungs as real trials in a study directory, and
write the answer (advise.md, advise.json, recommended.yaml and the report).

The rule itself is ``study/advise.py``. Here its requests become ``TrialConfig`` s of the study
config (regimen x rung budget x seed), run by the study executors into the directory's
``results.db``: a trial stored there before (by ``trainwise study`` or an earlier advise, same
config hash) is reused, not rerun, and costs what it recorded. Cost is process CPU time of
training steps (the trials' ``cpu_time``); the estimate of a trial is its planned steps x the
regimen's CPU time per step, measured by a short timed run of each regimen (the calibration,
whose CPU time is counted as spent). The calibration is kept in ``calibration.json``, keyed by
the config hash of the timed trial, and reused by a later advise in the same directory (delete
the file to measure again): with the stored trials, the same command again trains nothing and
gives the same answer.

A retrieval study (``task: retrieval``) is ranked by validation R-sum, handed to the rule as the mean
recall R-sum / 600 (a fraction like accuracy, so δ = 0.005 is 3 R-sum points) and shown as "mean
recall" in %.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..io import atomic_write_text, remove_stale_tmp
from ..lock import DirLock
from .advise import ADVICE_FRACTION, MIN_SEEDS, Outcome, Request, _pct, advice_summary, advise, rung_budgets
from .config import RegimenConfig, StudyConfig
from .runner import auto_val_note, check_inputs, describe_data, ensure_writable, make_executor, run_trials, time_steps
from .store import Store
from ..tasks import METRIC, METRICS
from .verdict import DELTA


def is_control(reg: RegimenConfig, base_loss="ce") -> bool:
    """Uniform sampling with no augmentation or only the standard crop-flip, the study's own loss
    (``base_loss``: the config's ``loss``, cross-entropy by default)."""
    return (reg.sampler["name"] == "uniform" and all(a["name"] == "standard" for a in reg.augment)
            and reg.multisplit is None and reg.loss in (None, base_loss))


def score(metrics: dict, split: str, metric: str) -> float | None:
    """A trial's ``split`` (val, test) score as the rule sees it, a fraction of the metric's best value:
    accuracy as it is, R-sum as the mean recall R-sum / 600."""
    v = metrics.get(f"{split}_{metric}")
    return None if v is None else v / METRICS[metric].top


def recommended_config(cfg: StudyConfig, reg: RegimenConfig, budget: float) -> str:
    """A study config that runs only the recommended regimen at B over the config's seeds."""
    d = cfg.model_dump(mode="json", exclude_defaults=True,
                       exclude={"samplers", "augments", "regimens", "budgets", "name"})
    d.get("dataset", {}).pop("fingerprint", None)  # filled in again when it runs
    d = {"name": f"{cfg.name}-recommended", **d, "budgets": [budget],
         "regimens": [reg.model_dump(mode="json", exclude_defaults=True) | {"name": reg.label()}]}
    return yaml.safe_dump(d, sort_keys=False, allow_unicode=True)


def calibrate(out: Path, full: dict, data, steps: int) -> tuple[dict[str, float], float, int, dict]:
    """CPU seconds per optimizer step of each regimen (``full``: regimen -> its trial at budget 1),
    from ``calibration.json`` in ``out`` where it holds that trial's config hash with the same
    number of timed steps, else measured now (``time_steps``). Returns the per-step costs, the CPU
    time the calibration took (as recorded, for reused entries too: a rerun reports the same
    spend), how many entries were reused, and the file's new content (None: unchanged), which the
    caller writes once the inputs have passed their checks."""
    path = out / "calibration.json"
    try:
        book = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        book = {}  # unreadable: measure again
    entries = book.get("trials", {}) if book.get("steps") == steps else {}
    per_step, spent, reused = {}, 0.0, 0
    for name, t in full.items():
        tid = t.config_hash()
        if tid in entries:
            reused += 1
        else:
            m = time_steps(t, data, steps)
            entries[tid] = dict(regimen=name, cpu_per_step=m["cpu"], cpu_spent=m["cpu_spent"],
                                full_steps=t.make_budget(data.n_train).total_steps)
        per_step[name], spent = entries[tid]["cpu_per_step"], spent + entries[tid]["cpu_spent"]
    return per_step, spent, reused, (None if reused == len(full) else {"steps": steps, "trials": entries})


def budget_of_units(units: float, full_steps: int, batch_size: int, unit: str) -> float:
    """The budget fraction whose run spends ``units`` of ``train.budget_unit``: a budget b buys
    about b x the full schedule's T steps, counted as T (steps) or T x batch size samples
    (backprop_samples, forward_backward)."""
    return units / (full_steps * (1 if unit == "steps" else batch_size))


def run_advice(cfg: StudyConfig, out: Path, budget: float | None = None, seconds: float | None = None,
               units: float | None = None, fraction: float = ADVICE_FRACTION, delta: float = DELTA,
               min_seeds: int = MIN_SEEDS,
               workers: int = 1, executor: str = "local", address: str | None = None,
               progress: bool | None = None, calibrate_steps: int = 6, echo=print) -> dict:
    """Advise on ``cfg``'s regimens at ``budget`` (a fraction of the full schedule), at the budget
    whose control trial takes ``seconds`` of CPU time, or at the budget that spends ``units`` of
    ``train.budget_unit``; write the outputs into ``out``."""
    ex = make_executor(executor, workers, False, address)
    regs = cfg.regimen_list()
    if any(r.multisplit for r in regs):
        raise ConfigError("advise compares single-run regimens; move the multisplit regimens to a study")
    cfg, _, _, data = check_inputs(cfg.model_copy(update={"budgets": [1.0]}))
    about = describe_data(cfg, data)
    ensure_writable(out)
    with DirLock(out, f"trainwise advise {cfg.name}"):
        remove_stale_tmp(out)
        full = {t.regimen: t for t in cfg.model_copy(update={"seeds": cfg.seeds[:1]}).trials()}  # at budget 1
        unit = cfg.train.budget_unit
        if budget is None and units is not None:
            t = next(iter(full.values()))  # every regimen's full schedule has the same T steps
            budget = budget_of_units(units, t.make_budget(data.n_train).total_steps, cfg.train.batch_size, unit)
            if not 0 < budget <= 1:
                raise ConfigError(f"--units {units:g} asks for budget {budget:.3g} of the full schedule "
                                  f"(train.budget_unit: {unit}); give at most the units of one full run")
            echo(f"--units {units:g} ({unit}): budget {budget:.4g} of the full schedule")
        # calibration: CPU seconds per optimizer step of each regimen, on the first seed at budget 1
        per_step, spent, reused, book = calibrate(out, full, data, calibrate_steps)
        if auto_val_note(cfg):
            echo(auto_val_note(cfg))
        echo("calibration: " + ", ".join(f"{n} {c * 1000:.3g} ms" for n, c in per_step.items())
             + f" CPU per step ({spent:.3g} s" + (f"; {reused} reused from calibration.json)" if reused else ")"))
        names = [r.label() for r in regs]
        control = next((r.label() for r in regs if is_control(r, cfg.loss)), None)
        metric = METRIC[cfg.task]  # accuracy, or retrieval's R-sum (as mean recall)
        if budget is None:
            base = control or names[0]
            budget = seconds / (per_step[base] * full[base].make_budget(data.n_train).total_steps)
            if not 0 < budget <= 1:
                raise ConfigError(f"--seconds {seconds:g} asks for budget {budget:.3g} of {base}'s full schedule; "
                                  "give at most the seconds of one full run, or use --budget")
            echo(f"--seconds {seconds:g}: budget {budget:.4g} of the full schedule ({base})")
        rungs = rung_budgets(budget)
        rcfg = cfg.model_copy(update={"budgets": rungs})
        trials = {(t.regimen, t.budget, t.seed): t for t in rcfg.trials()}
        try:
            planned = {t.config_hash(): t.make_budget(data.n_train).total_steps for t in trials.values()}
        except ConfigError as e:
            raise ConfigError(f"budget {budget:g} is too small for advise's first rung {rungs[0]:g}: {e}") from None
        del data
        if book is not None:
            atomic_write_text(out / "calibration.json", json.dumps(book, indent=2))
        steps_of = {(t.regimen, t.budget): planned[t.config_hash()] for t in trials.values()}

        def estimate(regimen: str, b: float) -> float:
            return steps_of[(regimen, b)] * per_step[regimen]

        grid = sum(estimate(r, rungs[-1]) for r in names) * len(cfg.seeds)
        limit = fraction * grid
        echo(f"advise {cfg.name!r}: {len(names)} regimens at budget {rungs[-1]:g} (rungs {', '.join(map(str, rungs))}); "
             f"exhaustive grid ≈ {grid:.3g} s CPU ({len(names)} x {len(cfg.seeds)} seeds), advice budget "
             f"{limit:.3g} s ({fraction:.0%})" + (f"; control: {control}" if control else "; no uniform/standard control"))
        atomic_write_text(out / "study.json", json.dumps(
            {"name": cfg.name, "config": rcfg.model_dump(mode="json"), "advise": {"budget": rungs[-1]},
             "trial_ids": [t.config_hash() for t in trials.values()], "data": about}, indent=2))
        store = Store(out / "results.db")
        asked: list[str] = []
        # a stored trial costs what it recorded (advise.cost_of)
        recorded = {r["trial_id"]: (r.get("metrics") or {}).get("cpu_time")
                    for r in store.rows({t.config_hash() for t in trials.values()}) if r["status"] == "done"}

        def known(q: Request) -> float | None:
            return recorded.get(trials[(q.regimen, q.budget, q.seed)].config_hash())

        try:
            def run(reqs: list[Request]) -> dict[Request, Outcome]:
                batch = [trials[(q.regimen, q.budget, q.seed)] for q in reqs]
                asked.extend(t.config_hash() for t in batch)
                rows = {r["trial_id"]: r for r in run_trials(rcfg, out, batch, planned, store, ex,
                                                              progress=progress, echo=echo)}
                got = {}
                for q, t in zip(reqs, batch):
                    r = rows[t.config_hash()]
                    m = r.get("metrics") or {}
                    val = score(m, "val", metric)
                    ok = r["status"] == "done" and val is not None
                    got[q] = Outcome(val if ok else None, m.get("cpu_time") or 0.0, score(m, "test", metric),
                                     None if ok else (r.get("error") or f"no validation {metric} recorded"))
                return got

            result = advise(names, budget, list(cfg.seeds), run, estimate, limit, control=control, delta=delta,
                            min_seeds=min_seeds, spent=spent, grid_cost=grid, echo=lambda s: echo("  " + s),
                            known=known)
            rows = store.rows(set(asked))
        finally:
            store.close()
        result.update(seconds=seconds, units=units, budget_unit=unit, calibration_cpu_time=spent,
                      cpu_per_step=per_step, fraction=fraction, seeds=list(cfg.seeds), name=cfg.name,
                      cost_unit="process CPU seconds of training steps",
                      metric="accuracy" if metric == "acc" else "mean recall (R-sum / 6)")
        pick = next(r for r in regs if r.label() == result["pick"]) if result["pick"] else None
        files = {"advise.json": json.dumps(result, indent=2)}
        if pick is not None:
            files["recommended.yaml"] = recommended_config(cfg, pick, rungs[-1])
        files["advise.md"] = advice_markdown(result, about)
        for name, text in files.items():
            atomic_write_text(out / name, text)
        from .runner import main_report

        main_report(out, rows, f"trainwise advise: {cfg.name} at budget {rungs[-1]:g}", echo, notes=about,
                    advice=result)
    return result


def advice_markdown(a: dict, about: str = "") -> str:
    """advise.md: the answer, then per regimen where it ended and why, then the rule."""
    md = [f"# trainwise advise: {a.get('name', '')} at budget {a['budget']:g}", ""]
    what = a.get("metric", "accuracy")  # retrieval: mean recall, R-sum / 6
    md += [x for line in advice_summary(a) for x in (line, "")]
    if about:
        md += [about, ""]
    md += ["| regimen | status | predicted val at B [95%] | basis | val at B | test at B | trials (budget: seeds) | why |",
           "|---|---|---|---|---|---|---|---|"]
    for name, r in a["regimens"].items():
        ci = f"{_pct(r['pred'])} [{_pct(r['lo'])}, {_pct(r['hi'])}]" if r["pred"] is not None else "—"
        trials = "; ".join(f"{b}: {len(s)}" for b, s in r["trials"].items()) or "—"
        tag = " (control)" if name == a.get("control") else ""
        role = (" (pick)" if name == a["pick"] else " (tied)" if name in a["tied"]
                else " (not run at B)" if name in a.get("not_at_b", []) else "")
        md.append(f"| {name}{tag} | {r['status']}{role} | {ci} | {r['basis'] or '—'} | {_pct(r['val_acc'])} | "
                  f"{_pct(r['test_acc'])} | {trials} | {r['reason'] or ''} |")
    md += ["", f"Rungs: complete budget-aware runs at {', '.join(f'{b:g}' for b in a['rungs'])} with "
           f"{a['min_seeds']} seeds, then one more seed at B per survivor while the budget lasts. A regimen "
           f"is dropped when its upper bound + δ ({a['delta'] * 100:g} points) is below the best lower bound "
           f"(from the B/3 rung on; the control is kept). Selection uses validation {what} only; test {what} "
           "is reported, never used. The rule: docs/methods.md §8.", "", "## Log", ""]
    md += [f"- {line}" for line in a["log"]]
    if a["pick"]:
        md += ["", "Run the recommendation: `trainwise study recommended.yaml` (written next to this file)."]
    return "\n".join(md) + "\n"


__all__ = ["run_advice", "advice_markdown", "recommended_config", "is_control"]
