"""The study report: a table of mean +- std over seeds per regimen x budget, and plots.

Writes ``report.md`` (with PNG plots beside it) and a self-contained ``report.html``
(plots embedded) into the study directory, atomically. ``COLUMNS`` lists the table's
columns; a method that adds a metric adds a column there.
"""

from __future__ import annotations

import base64
import html as htmllib
import io
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Callable

from ..io import atomic_write_bytes, atomic_write_text
from ..robust.report import robust_columns, robust_plots


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


def _speedup(ms: list[dict], groups, regimen: str) -> str:
    """Wall-time speed-up against uniform sampling at budget 1.0 (same augmentation)."""
    aug = regimen.split("/", 1)[1] if "/" in regimen else None
    base = groups.get((f"uniform/{aug}", 1.0)) if aug else None
    if not base:
        return "–"
    return f"{statistics.fmean(m['wall_time'] for m in base) / statistics.fmean(m['wall_time'] for m in ms):.2f}×"


Column = tuple[str, Callable[[list[dict], dict, str], str]]
COLUMNS: list[Column] = [
    ("test acc % (final)", lambda ms, g, r: fmt_ms([m["test_acc"] for m in ms], 100)),
    ("test acc % (best)", lambda ms, g, r: fmt_ms([m["best_test_acc"] for m in ms], 100)),
    ("train acc % (final)", lambda ms, g, r: fmt_ms([m["train_acc"] for m in ms], 100)
     if all("train_acc" in m for m in ms) else "–"),  # vs test acc: under- or overfitting
    ("wall time s", lambda ms, g, r: fmt_ms([m["wall_time"] for m in ms], 1, 1)),
    ("speed-up vs uniform@1.0", _speedup),
    ("steps", lambda ms, g, r: f"{statistics.fmean(m['steps'] for m in ms):.0f}"),
    ("samples fwd", lambda ms, g, r: f"{statistics.fmean(m['samples_forwarded'] for m in ms):.0f}"),
    ("samples bwd", lambda ms, g, r: f"{statistics.fmean(m['samples_backpropagated'] for m in ms):.0f}"),
    ("time to target", lambda ms, g, r: _ttt(ms)),
    ("test acc % (TTA sum)", lambda ms, g, r: fmt_ms([m["test_acc_tta_sum"] for m in ms], 100)
     if all("test_acc_tta_sum" in m for m in ms) else "–"),  # train.tta_sum (Cascading Sum)
]


def table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    groups = group(rows)
    columns = COLUMNS + robust_columns(groups)  # robust-accuracy columns only when trials carry them
    header = ["regimen", "budget", "seeds"] + [c[0] for c in columns]
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


def console_table(rows: list[dict]) -> str:
    from rich.console import Console
    from rich.table import Table

    header, body = table(rows)
    t = Table(*header, title="results (mean ± std over seeds)")
    for r in body:
        t.add_row(*r)
    buf = io.StringIO()
    Console(file=buf, width=200, force_terminal=False).print(t)
    return buf.getvalue().rstrip()


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (tight layout); the figure is closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _plots(rows: list[dict]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_reg: dict[str, list[tuple[float, list[dict]]]] = defaultdict(list)
    for (reg, b), ms in group(rows).items():
        by_reg[reg].append((b, ms))
    out = {}
    for name, xkey, xlabel in [("accuracy_vs_budget", None, "budget (fraction of the full schedule)"),
                               ("accuracy_vs_time", "wall_time", "training wall time (s)")]:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        for reg, pts in sorted(by_reg.items()):
            pts.sort(key=lambda p: p[0])
            ys = [mean_std([m["test_acc"] * 100 for m in ms]) for _, ms in pts]
            if xkey is None:
                xs = [b for b, _ in pts]
                xerr = None
            else:
                xm = [mean_std([m[xkey] for m in ms]) for _, ms in pts]
                xs, xerr = [x for x, _ in xm], [e for _, e in xm]
            ax.errorbar(xs, [y for y, _ in ys], yerr=[e for _, e in ys], xerr=xerr, marker="o",
                        capsize=3, label=reg)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("final test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        out[name] = figure_png(fig)
    out.update(robust_plots(group(rows)))  # accuracy vs ε, only when trials carry robust metrics
    return out


def write_report(out: Path, rows: list[dict], title: str, notes: str = "") -> Path:
    """Write report.md, report.html and the plot PNGs into ``out``; return the HTML path."""
    header, body = table(rows)
    failed = [r for r in rows if r["status"] != "done"]
    plots = _plots(rows) if body else {}
    for name, png in plots.items():
        atomic_write_bytes(out / f"{name}.png", png)

    md = [f"# {title}", "", "Mean ± std over seeds. Wall time is training time (evaluation excluded).", ""]
    if notes:
        md += [notes, ""]
    md += [markdown_table(header, body), ""]
    md += [f"![{n}]({n}.png)" for n in plots]
    if failed:
        md += ["", "## Failed trials", ""]
        md += [f"- {r['regimen']} budget={r['budget']} seed={r['seed']}: {(r['error'] or '').splitlines()[0]}"
               for r in failed]
    atomic_write_text(out / "report.md", "\n".join(md) + "\n")

    esc = htmllib.escape
    h = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
         "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
         "td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}th{background:#eee}</style>",
         f"</head><body><h1>{esc(title)}</h1><p>Mean ± std over seeds. Wall time is training time.</p>"]
    if notes:
        h.append(f"<p>{esc(notes)}</p>")
    h.append("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in header) + "</tr>")
    h += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in body]
    h.append("</table>")
    for name, png in plots.items():
        h.append(f"<h2>{esc(name.replace('_', ' '))}</h2><img alt='{name}' "
                 f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    if failed:
        h.append("<h2>Failed trials</h2><ul>")
        h += [f"<li>{esc(r['regimen'])} budget={r['budget']} seed={r['seed']}: "
              f"{esc((r['error'] or '').splitlines()[0])}</li>" for r in failed]
        h.append("</ul>")
    h.append("</body></html>")
    atomic_write_text(out / "report.html", "\n".join(h))
    return out / "report.html"
