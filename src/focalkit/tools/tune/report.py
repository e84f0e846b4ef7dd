"""Reports of a :class:`~focalkit.tools.tune.results.TuneResult`: the text summary, the rows of
the top-trials table, the progress line of a finished trial, the (gamma, alpha) plot and the
self-contained HTML page. Numbers go through :mod:`focalkit.tools._format`.

Functions take the result as ``Any`` (a ``TuneResult``): this module does not import
:mod:`~focalkit.tools.tune.results`, whose methods call it.
"""

from __future__ import annotations

import html
import io
import os
from typing import Any

import numpy as np

from focalkit.tools._format import format_fixed, format_number, format_pm
from focalkit.tools.tune.schema import (
    ALPHA,
    ALPHA_PARAM,
    DURATION_S,
    GAMMA,
    REFERENCE,
    REFERENCE_LABELS,
)

__all__ = [
    "TABLE_COLUMNS",
    "alpha_cell",
    "plot_result",
    "summary_text",
    "table_rows",
    "trial_line",
    "write_html",
]


def summary_text(result: Any) -> str:
    """A few lines: the best trial, its spread, and the comparison with cross-entropy."""
    r = result
    lines = [
        f"study {r.study!r}: {r.n_trials} trials finished ({r.n_pruned} pruned), "
        f"objective: {r.direction} mean {r.metric} over {r.config.get('folds')} folds"
    ]
    if r.best is None:
        lines.append("no trial completed yet")
        return "\n".join(lines)
    b = r.best
    lines.append(f"best: {b.label} (trial {b.number}): {r.metric} = {format_pm(b.value, b.std)}")
    if r.best_reference is not None and r.improvement is not None:
        ref = r.best_reference
        lines.append(f"best cross-entropy reference: {ref.label}: {format_pm(ref.value, ref.std)}")
        if b.number == ref.number:
            lines.append("no focal loss setting beat the cross-entropy references")
        else:
            verdict = "larger" if r.exceeds_spread else "NOT larger"
            sign = "+" if r.improvement >= 0 else ""
            lines.append(
                f"improvement over it: {sign}{format_number(r.improvement)} ({verdict} than the "
                f"fold-to-fold spread {format_number(r.spread)}; paired per-fold std "
                f"{format_number(r.paired_std)})"
            )
    return "\n".join(lines)


def alpha_cell(t: Any, *, digits: int = 4, vector: bool = True) -> str:
    """The alpha of a trial summary in a table: ``off``, the scalar alpha, or ``s=S`` followed
    (when ``vector``) by the per-class weights in 3 significant digits."""
    if t.alpha is None:
        return "off"
    if isinstance(t.alpha, list):
        cell = "s=" + format_number(t.alpha_param, digits)
        return cell + " [" + ", ".join(format_number(a, 3) for a in t.alpha) + "]" if vector else cell
    return format_number(t.alpha, digits)


#: Columns of :func:`table_rows`.
TABLE_COLUMNS = ("rank", "trial", "loss", "gamma", "alpha", "{metric}", "per fold")


def table_rows(result: Any, k: int) -> list[tuple[str, ...]]:
    """Rows of the top-``k`` table (then the references that are not among them, rank ``-``):
    rank, trial, loss, gamma, alpha (``s=S`` for class weights), mean +- std, per-fold scores."""
    top = result.top(k)

    def row(rank: str, t: Any) -> tuple[str, ...]:
        return (rank, str(t.number), t.label if t.reference else "focal", format_number(t.gamma),
                alpha_cell(t, digits=3, vector=False), format_pm(t.value, t.std),
                " ".join(format_fixed(s, 3) for s in t.fold_scores))

    rows = [row(str(i + 1), t) for i, t in enumerate(top)]
    rows += [row("-", t) for t in result.references.values() if t not in top]
    return rows


def trial_line(trial: Any, metric: str, done: int, n_trials: int) -> str:
    """The progress line of a finished (frozen) trial: ``[done/n] trial N state what score [s]``."""
    ua = trial.user_attrs
    ref = ua.get(REFERENCE)
    if ref:
        what = REFERENCE_LABELS[ref]
    else:
        p = ua.get(ALPHA_PARAM)
        if p is None:
            a = "alpha off"
        elif isinstance(ua.get(ALPHA), list):
            a = f"alpha power={format_fixed(p, 3)}"
        else:
            a = f"alpha={format_fixed(p, 3)}"
        what = f"gamma={format_fixed(ua.get(GAMMA, 0.0), 3)} {a}"
    if trial.state.name == "COMPLETE":
        score = f"{metric}={format_fixed(trial.value, 4)}"
    elif trial.intermediate_values:
        last = trial.intermediate_values[max(trial.intermediate_values)]
        score = f"{metric}={format_fixed(last, 4)} (last report)"
    else:
        score = ""
    dur = ua.get(DURATION_S)
    t = "" if dur is None else f" [{format_fixed(dur, 1)} s]"
    state = trial.state.name.lower()
    return f"[{done:>3}/{n_trials}] trial {trial.number:>3} {state:<8} {what:<32} {score}{t}"


def plot_result(result: Any, path: str | os.PathLike[str] | None, ax: Any = None) -> Any:
    """The objective over the (gamma, alpha) plane (see ``TuneResult.plot``); a matplotlib Figure."""
    import matplotlib.tri as mtri
    from matplotlib.figure import Figure

    if ax is None:  # no pyplot: works with any (or no) interactive backend
        fig = Figure(figsize=(7.0, 5.6), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    space = result.config
    scalar = space.get("alpha_mode", "scalar") == "scalar"
    ylabel = "alpha (weight of positives)" if scalar else "alpha power s  (alpha_c ~ n_c^-s)"
    cmap = "viridis" if result.direction == "maximize" else "viridis_r"
    search = [t for t in result.trials if t.reference is None and t.alpha_param is not None]
    done = [t for t in search if t.state == "COMPLETE"]
    pruned = [t for t in search if t.state != "COMPLETE"]
    if done:
        x = np.array([t.gamma for t in done])
        y = np.array([t.alpha_param for t in done])
        z = np.array([t.value for t in done])
        cs = None
        if len(done) >= 4:
            try:
                cs = ax.tricontourf(mtri.Triangulation(x, y), z, levels=12, cmap=cmap, alpha=0.55)
            except Exception:  # collinear points: no interpolation, the markers remain
                cs = None
        sc = ax.scatter(x, y, c=z, cmap=cmap, edgecolors="black", linewidths=0.5, s=36, zorder=3,
                        label="trials")
        fig.colorbar(sc if cs is None else cs, ax=ax, label=f"mean {result.metric} over folds")
    if pruned:
        ax.scatter([t.gamma for t in pruned], [t.alpha_param for t in pruned], marker="x",
                   color="grey", s=30, zorder=3, label="pruned")
    b = result.best
    if b is not None and b.reference is None:
        ax.scatter([b.gamma], [b.alpha_param], marker="*", s=260, color="red", edgecolors="black",
                   zorder=4, label=f"best: {format_pm(b.value, b.std)}", clip_on=False)
    for name, t in result.references.items():
        label = f"{t.label}: {format_pm(t.value, t.std)}"
        if name == "balanced_ce" and t.alpha_param is not None:
            ax.scatter([0.0], [t.alpha_param], marker="D", s=60, color="orange",
                       edgecolors="black", zorder=4, label=label, clip_on=False)
        else:
            ax.plot([], [], " ", label=label)
    ax.set_xlim(*space["gamma_range"])
    ax.set_ylim(*space["alpha_range"])
    ax.set_xlabel("gamma")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{result.study}: {result.metric} ({result.direction}), {result.n_trials} trials")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def write_html(result: Any, path: str | os.PathLike[str]) -> None:
    """A self-contained HTML page: the summary, the plot (inline SVG) and the top 20 trials."""
    fig = plot_result(result, None)
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    svg = buf.getvalue()
    svg = svg[svg.find("<svg"):]
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            i + 1, t.number, t.label, format_number(t.gamma), alpha_cell(t), format_pm(t.value, t.std),
            " ".join(format_number(s) for s in t.fold_scores),
        )) + "</tr>"
        for i, t in enumerate(result.top(20))
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>focalkit tune: {html.escape(result.study)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}
pre{{background:#f6f6f6;padding:1em}}</style></head><body>
<h1>focalkit tune: {html.escape(result.study)}</h1>
<pre>{html.escape(summary_text(result))}</pre>
{svg}
<h2>Top trials</h2>
<table><tr><th>rank</th><th>trial</th><th>loss</th><th>gamma</th><th>alpha</th>
<th>{html.escape(result.metric)} (mean +- std)</th><th>per fold</th></tr>
{rows}
</table></body></html>
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
