"""The study report: a table of mean +- std over seeds per regimen x budget, and plots.

Writes ``report.md`` (with PNG plots beside it), a self-contained ``report.html`` (plots
embedded) and ``report.json`` (how many trials the report covers) into the study directory,
all or none: a report is never replaced by an empty or a half-written one. ``COLUMNS``
lists the table's columns; a method that adds a metric adds a column there.
"""

from __future__ import annotations

import base64
import html as htmllib
import io
import json
import math
import os
import shutil
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

from ..errors import TrainwiseError
from ..gradstats.report import variance_plots
from ..io import atomic_write_bytes
from ..provenance import provenance
from ..plots import figure_png
from ..robust.report import robust_columns, robust_plots
from ..tasks import METRICS
from .verdict import RULE, metric_of, sentence, verdict
from .advise import advice_summary


def mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt_ms(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    m, s = mean_std([v * scale for v in values])
    return "–" if math.isnan(m) else f"{m:.{digits}f} ± {s:.{digits}f}"


def group(rows: list[dict]) -> dict[tuple[str, float], list[dict]]:
    """Done rows grouped by (regimen, budget), in a stable order."""
    groups: dict[tuple[str, float], list[dict]] = defaultdict(list)
    for r in rows:
        if r["status"] == "done":
            groups[(r["regimen"], r["budget"])].append(r["metrics"])
    return dict(sorted(groups.items()))


def _ttt(ms: list[dict]) -> str:
    reached = [m["time_to_target"] for m in ms if m.get("time_to_target") is not None]
    if not reached:
        return f"0/{len(ms)} reached"
    return f"{statistics.fmean(reached):.1f}s ({len(reached)}/{len(ms)})"


def time_basis(groups) -> str:
    """"cpu_time" (process CPU time) when every done trial recorded it, else "wall_time"."""
    return "cpu_time" if all(m.get("cpu_time") is not None for ms in groups.values() for m in ms) else "wall_time"


def _speedup(ms: list[dict], groups, regimen: str) -> str:
    """Speed-up against uniform sampling at budget 1.0 (same augmentation), in process CPU time
    when every trial recorded it (``time_basis``), else in wall time."""
    aug = regimen.split("/", 1)[1] if "/" in regimen else None
    base = groups.get((f"uniform/{aug}", 1.0)) if aug else None
    if not base:
        return "–"
    k = time_basis(groups)
    return f"{statistics.fmean(m[k] for m in base) / statistics.fmean(m[k] for m in ms):.2f}×"


ABOUT_TABLE = ("Mean ± std over seeds. Wall and CPU time are training time (evaluation excluded); CPU time "
               "(the process's) is what the speed-up and the verdict's costs use, as it moves far less than "
               "wall time on a shared machine. Time to target is measured on validation accuracy when the "
               "study has a validation split. The best test accuracy is the best seen during training: "
               "chosen on the test set, an optimistic diagnostic, not an estimate.")
SPEEDUP = "speed-up vs uniform@1.0"  # table() names the time it is computed from
BEST = "test acc % (best, optimistic)"  # the best test accuracy seen during training: chosen on the test set


Column = tuple[str, Callable[[list[dict], dict, str], str]]
COLUMNS: list[Column] = [
    ("val acc % (final)", lambda ms, g, r: fmt_ms([m["val_acc"] for m in ms], 100)
     if all(m.get("val_acc") is not None for m in ms) else "–"),  # what the verdict picks on
    ("test acc % (final)", lambda ms, g, r: fmt_ms([m["test_acc"] for m in ms], 100)),
    (BEST, lambda ms, g, r: fmt_ms([m["best_test_acc"] for m in ms], 100)),
    ("train acc % (final)", lambda ms, g, r: fmt_ms([m["train_acc"] for m in ms], 100)
     if all("train_acc" in m for m in ms) else "–"),  # vs test acc: under- or overfitting
    ("wall time s", lambda ms, g, r: fmt_ms([m["wall_time"] for m in ms], 1, 1)),
    ("CPU time s", lambda ms, g, r: fmt_ms([m["cpu_time"] for m in ms], 1, 1)
     if all(m.get("cpu_time") is not None for m in ms) else "–"),  # survives a shared machine
    (SPEEDUP, _speedup),
    ("steps", lambda ms, g, r: f"{statistics.fmean(m['steps'] for m in ms):.0f}"),
    ("samples fwd", lambda ms, g, r: f"{statistics.fmean(m['samples_forwarded'] for m in ms):.0f}"),
    ("samples bwd", lambda ms, g, r: f"{statistics.fmean(m['samples_backpropagated'] for m in ms):.0f}"),
    ("time to target", lambda ms, g, r: _ttt(ms)),
    ("test acc % (TTA sum)", lambda ms, g, r: fmt_ms([m["test_acc_tta_sum"] for m in ms], 100)
     if all("test_acc_tta_sum" in m for m in ms) else "–"),  # train.tta_sum (Cascading Sum)
]


def _count(key: str) -> Callable[[list[dict], dict, str], str]:
    return lambda ms, g, r: f"{sum(bool(m.get(key)) for m in ms)}/{len(ms)}" if all(key in m for m in ms) else "–"


ABOUT_RETRIEVAL = ("Mean ± std over seeds. R-sum is R@1 + R@5 + R@10 in both directions (a→b: a view-A "
                   "query ranks the view-B items; b→a the reverse), in %, averaged over folds of 1,000 "
                   "groups; the train R-sum is the final model's on its training pairs. Collapsed: trials "
                   "whose loss sat at the identical-embeddings value with no spread (trainwise/tasks.py). "
                   "CPU time is what the verdict's costs use.")
RETRIEVAL_COLUMNS: list[Column] = [
    ("val R-sum (final)", lambda ms, g, r: fmt_ms([m["val_rsum"] for m in ms], 1, 1)
     if all(m.get("val_rsum") is not None for m in ms) else "–"),
    ("test R-sum (final)", lambda ms, g, r: fmt_ms([m["test_rsum"] for m in ms], 1, 1)),
    ("test R@1 a→b %", lambda ms, g, r: fmt_ms([m["test_r1_ab"] for m in ms], 1, 1)),
    ("test R@1 b→a %", lambda ms, g, r: fmt_ms([m["test_r1_ba"] for m in ms], 1, 1)),
    ("train R-sum (final)", lambda ms, g, r: fmt_ms([m["train_rsum"] for m in ms], 1, 1)
     if all("train_rsum" in m for m in ms) else "–"),  # vs test: under- or overfitting
    ("collapsed", _count("collapsed")),
    *[c for c in COLUMNS if c[0] in ("wall time s", "CPU time s", "steps", "samples fwd", "samples bwd")],
]


def columns_for(metric: str) -> list[Column]:
    """The table's columns for a study ranked by ``metric`` (accuracy, or retrieval's R-sum)."""
    return RETRIEVAL_COLUMNS if metric == "rsum" else COLUMNS


def table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    groups = group(rows)
    columns = columns_for(metric_of(rows)) + robust_columns(groups)  # robust columns when trials carry them
    header = ["regimen", "budget", "seeds"] + [c[0] for c in columns]
    basis = "CPU time" if time_basis(groups) == "cpu_time" else "wall time"
    header = [f"{h} ({basis})" if h == SPEEDUP else h for h in header]
    body = []
    for (reg, b), ms in groups.items():
        body.append([reg, f"{b:g}", str(len(ms))] + [fn(ms, groups, reg) for _, fn in columns])
    # a metric no trial of this study records (e.g. TTA accuracy) gets no column
    keep = [i for i in range(len(header)) if i < 3 or any(r[i] != "–" for r in body)]
    return [header[i] for i in keep], [[r[i] for i in keep] for r in body]


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


# columns the console table drops first when the terminal is narrow (report.md has them all)
LOW_PRIORITY = ("samples fwd", "samples bwd", "steps", "time to target", BEST, "train acc % (final)")
KEEP = 4  # regimen, budget, seeds, final test accuracy: never dropped
REGIMEN_WIDTH = 24  # columns are dropped before regimen names wrap narrower than this


def fit_columns(header: list[str], body: list[list[str]], width: int) -> dict[int, int]:
    """Column index -> text width of the columns that fit a rich table ``width`` characters wide
    with unwrapped cells: the LOW_PRIORITY columns are dropped first, then the others from the
    right. Long regimen names wrap first, then headers (at spaces)."""
    cells = [max([len(r[i]) for r in body] + [0]) for i in range(len(header))]
    need = [max([c] + [len(w) for w in h.split()]) for c, h in zip(cells, header)]  # headers wrapped
    full = [max(c, len(h)) for c, h in zip(cells, header)]  # nothing wrapped
    keep = list(range(len(header)))
    order = [header.index(h) for h in LOW_PRIORITY if h in header] + list(range(len(header) - 1, KEEP - 1, -1))
    for i in order:
        if min(full[0], REGIMEN_WIDTH) + sum(need[j] + 3 for j in keep[1:]) + 4 <= width:
            break
        if i in keep and i >= KEEP:
            keep.remove(i)
    widths = {i: need[i] for i in keep}
    spare = width - sum(need[j] + 3 for j in keep[1:]) - 4  # 3: padding and border per column
    widths[0] = min(full[0], spare)
    spare -= widths[0]
    for i in keep[1:]:  # unwrap headers while there is room
        if full[i] - need[i] <= spare:
            spare -= full[i] - need[i]
            widths[i] = full[i]
    return widths


def console_table(rows: list[dict], width: int | None = None) -> str:
    """The results table for the console, ``width`` wide (default: the terminal's, 100 when not a
    tty), dropping the least important columns that do not fit (see ``fit_columns``)."""
    from rich.console import Console
    from rich.table import Table

    width = width or shutil.get_terminal_size((100, 24)).columns
    header, body = table(rows)
    widths = fit_columns(header, body, width)
    fixed = widths[0] >= 8  # else too narrow even for the kept columns: rich folds them all
    t = Table(title="results (mean ± std over seeds)")
    for i, w in widths.items():
        t.add_column(header[i], overflow="fold", width=w if fixed else None)
    if len(widths) < len(header):
        t.caption = f"{len(header) - len(widths)} more column(s) in report.md"
    for r in body:
        t.add_row(*[r[i] for i in widths])
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=False).print(t)
    return buf.getvalue().rstrip()


def _plots(rows: list[dict]) -> dict[str, bytes]:
    metric = METRICS[metric_of(rows)]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_reg: dict[str, list[tuple[float, list[dict]]]] = defaultdict(list)
    for (reg, b), ms in group(rows).items():
        by_reg[reg].append((b, ms))
    out = {}
    what = "accuracy" if metric.key == "acc" else "r_sum"  # the plots' file names and headings
    for name, xkey, xlabel in [(f"{what}_vs_budget", None, "budget (fraction of the full schedule)"),
                               (f"{what}_vs_time", "wall_time", "training wall time (s)")]:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        for reg, pts in sorted(by_reg.items()):
            pts.sort(key=lambda p: p[0])
            ys = [mean_std([m[f"test_{metric.key}"] * metric.scale for m in ms]) for _, ms in pts]
            if xkey is None:
                xs = [b for b, _ in pts]
                xerr = None
            else:
                xm = [mean_std([m[xkey] for m in ms]) for _, ms in pts]
                xs, xerr = [x for x, _ in xm], [e for _, e in xm]
            ax.errorbar(xs, [y for y, _ in ys], yerr=[e for _, e in ys], xerr=xerr, marker="o",
                        capsize=3, label=reg)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("final test accuracy (%)" if metric.key == "acc" else f"final test {metric.label}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        out[name] = figure_png(fig)
    pareto = _pareto_plot(rows, plt, metric)
    if pareto is not None:
        out["pareto_validation_vs_cost"] = pareto
    out.update(robust_plots(group(rows)))  # accuracy vs ε, only when trials carry robust metrics
    out.update(variance_plots(group(rows)))  # gradient variance vs step, when trials ran the meter
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, accuracy) points no other point beats with a lower or equal cost and a higher
    accuracy, by increasing cost."""
    front, best = [], float("-inf")
    for cost, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((cost, acc))
            best = acc
    return front


def _pareto_plot(rows: list[dict], plt, metric=METRICS["acc"]) -> bytes | None:
    """Validation accuracy (the task's metric) vs cost (process CPU time, else wall time), one point
    per trial, with the frontier drawn: which procedures buy accuracy cheapest. None without
    validation data."""
    vk = f"val_{metric.key}"
    done = [r for r in rows if r["status"] == "done" and r["metrics"] and vk in r["metrics"]]
    if not done:
        return None
    key = "cpu_time" if all("cpu_time" in r["metrics"] for r in done) else "wall_time"
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    points = []
    for reg in sorted({r["regimen"] for r in done}):
        mine = [(r["metrics"][key], r["metrics"][vk] * metric.scale) for r in done if r["regimen"] == reg]
        points += mine
        ax.scatter([c for c, _ in mine], [a for _, a in mine], s=18, label=reg)
    front = pareto_front(points)
    ax.step([c for c, _ in front], [a for _, a in front], where="post", color="black", lw=1, label="frontier")
    ax.set_xlabel(f"training {'process CPU' if key == 'cpu_time' else 'wall'} time per trial (s)")
    ax.set_ylabel("validation accuracy (%)" if metric.key == "acc" else f"validation {metric.label}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure_png(fig)


def write_report(out: Path, rows: list[dict], title: str, notes: str = "", echo=print,
                 advice: dict | None = None) -> Path:
    """Write report.md, report.html, the plot PNGs and report.json into ``out``; return the HTML path.

    With no rows at all, or when a file cannot be written (read-only directory, full disk),
    raise ``TrainwiseError`` and keep the previous report. When the new report covers fewer
    trials than the one it replaces (its report.json), ``echo`` a warning naming both counts.
    """
    if not rows:
        raise TrainwiseError(f"no trials stored in {out}; the existing report is kept "
                             "(run the study first, or check study.json and results.db)")
    header, body = table(rows)
    failed = [r for r in rows if r["status"] != "done"]
    plots = _plots(rows) if body else {}
    files = {f"{name}.png": png for name, png in plots.items()}

    metric = METRICS[metric_of(rows)]
    verdicts = verdict(rows, metric=metric.key)
    rule = RULE.format(delta=metric.delta * metric.scale,
                       what="accuracy" if metric.key == "acc" else metric.label)
    about = ABOUT_TABLE if metric.key == "acc" else ABOUT_RETRIEVAL
    prov = provenance_items(rows)

    md = [f"# {title}", ""]
    if advice is not None:  # trainwise advise's answer first (study/advise.py)
        md += ["## Advice", ""] + [x for line in advice_summary(advice) for x in (line, "")]
        md += ["See advise.md for every regimen's prediction and where it was dropped.", "",
               "## Verdict per budget (the trials advise ran)", ""]
    md += [x for v in verdicts for x in (sentence(v), "")]
    md += [f"_{rule}_", "", about, ""]
    if notes:
        md += [notes, ""]
    md += [markdown_table(header, body), ""]
    md += [f"![{n}]({n}.png)" for n in plots]
    if failed:
        md += ["", "## Failed trials", ""]
        md += [f"- {r['regimen']} budget={r['budget']} seed={r['seed']}: {((r['error'] or '').splitlines() or [''])[0]}"
               for r in failed]
    md += ["", "## Provenance", ""] + [f"- {k}: {v}" for k, v in prov]
    files["report.md"] = ("\n".join(md) + "\n").encode()

    esc = htmllib.escape
    h = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
         "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
         "td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}th{background:#eee}</style>",
         f"</head><body><h1>{esc(title)}</h1>"]
    if advice is not None:
        h.append("<h2>Advice</h2>")
        h += [f"<p class='advice'>{line}</p>" for line in advice_summary(advice, esc=esc, bold=lambda x: f"<b>{x}</b>")]
        h.append("<p>See advise.md for every regimen's prediction and where it was dropped.</p>"
                 "<h2>Verdict per budget (the trials advise ran)</h2>")
    h += [f"<p class='verdict'>{sentence(v, esc=esc, bold=lambda x: f'<b>{x}</b>')}</p>" for v in verdicts]
    h.append(f"<p><i>{esc(rule)}</i></p><p>{esc(about)}</p>")
    if notes:
        h.append(f"<p>{esc(notes)}</p>")
    h.append("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in header) + "</tr>")
    h += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in body]
    h.append("</table>")
    for name, png in plots.items():
        h.append(f"<h2>{esc(name.replace('_', ' '))}</h2><img alt='{esc(name)}' "
                 f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    if failed:
        h.append("<h2>Failed trials</h2><ul>")
        h += [f"<li>{esc(r['regimen'])} budget={r['budget']} seed={r['seed']}: "
              f"{esc(((r['error'] or '').splitlines() or [''])[0])}</li>" for r in failed]
        h.append("</ul>")
    h.append("<h2>Provenance</h2><ul>")
    h += [f"<li>{esc(k)}: {esc(str(v))}</li>" for k, v in prov]
    h.append("</ul>")
    h.append("</body></html>")
    files["report.html"] = "\n".join(h).encode()

    before = previous_trials(out)
    files["report.json"] = json.dumps({"trials": len(rows), "done": len(rows) - len(failed),
                                       "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode()
    write_all(out, files)
    if before is not None and len(rows) < before:
        echo(f"warning: the new report in {out} covers {len(rows)} trial(s), the one it replaced covered {before}")
    return out / "report.html"


def provenance_items(rows: list[dict]) -> list[tuple[str, object]]:
    """The report's provenance block: the machine and software (``trainwise.provenance``), then
    the dataset(s) named in the trials' configs (name, and fingerprint when it has one)."""
    items = list(provenance().items())
    seen = []
    for r in rows:
        ds = (r.get("config") or {}).get("dataset") or {}
        d = (ds.get("name"), ds.get("fingerprint"))
        if d[0] is not None and d not in seen:
            seen.append(d)
    for name, fp in seen:
        items.append(("dataset", f"{name} (fingerprint {fp})" if fp else name))
    return items


def previous_trials(out: Path) -> int | None:
    """The trial count in ``out/report.json``; None when there is none or it is unreadable."""
    try:
        n = json.loads((out / "report.json").read_text())["trials"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return n if isinstance(n, int) else None


def write_all(out: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (name -> bytes) into ``out``, all or none: each is first written whole to a
    staged name, then all are renamed into place. On OSError raise TrainwiseError; the previous
    files are kept."""
    staged: list[Path] = []
    try:
        for name, data in files.items():
            staged.append(out / f".{name}.staged.tmp")  # .*.tmp: io.remove_stale_tmp clears leftovers
            atomic_write_bytes(staged[-1], data)
        for name, tmp in zip(files, staged):
            os.replace(tmp, out / name)
    except OSError as e:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
        raise TrainwiseError(f"cannot write the report in {out} ({e.strerror or e}); the previous report "
                             "is kept (free some space or make the directory writable, then rerun "
                             "`trainwise report`)") from None
