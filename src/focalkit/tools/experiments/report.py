"""Self-contained HTML report of a comparison: tables, verdicts and figures as inline PNG.

Figures (matplotlib, embedded as base64 PNG, no external resources):

* precision-recall curves of each rare class, one line per loss (first seed);
* training-loss curves, each loss relative to its first epoch (mean over seeds, log scale);
* reliability diagrams per loss, rare classes and seeds pooled (15 equal-width bins).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from typing import Any

import numpy as np

from focalkit.tools._format import format_metric
from focalkit.tools.experiments.metrics import HIGHER_IS_BETTER, METRICS

__all__ = ["render_html", "write_html", "figure_pr", "figure_loss", "figure_reliability"]


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _names(result: dict) -> list[str]:
    return list(result["summary"])


def figure_pr(result: dict[str, Any]):
    """Precision-recall curves per rare class (first seed), one line per loss."""
    plt = _plt()
    rare = [str(c) for c in result["dataset"]["rare_classes"]]
    cls_names = result["dataset"]["class_names"]
    seed = result["seeds"][0]
    shown = rare[:6]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.8), squeeze=False)
    for ax, c in zip(axes[0], shown):
        for name in _names(result):
            run = next(r for r in result["runs"] if r["loss"] == name and r["seed"] == seed)
            curve = run["pr_curve"].get(c) or {}
            if curve.get("recall"):
                ap = run["per_class"][c]["ap"]
                ax.plot(curve["recall"], curve["precision"], lw=1.4,
                        label=f"{name} (AP {ap:.3f})" if ap is not None else name, drawstyle="steps-post")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(f"class {cls_names[int(c)]} (seed {seed})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def figure_loss(result: dict[str, Any]):
    """Mean training loss per epoch (boosting: round) relative to the first, per loss (log scale)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name in _names(result):
        curves = [np.asarray(r["loss_curve"], float) for r in result["runs"] if r["loss"] == name]
        n = min(len(c) for c in curves)
        rel = np.mean([c[:n] / c[0] if c[0] > 0 else c[:n] for c in curves], 0)
        ax.plot(np.arange(1, n + 1), rel, marker=".", label=name)
    unit = result.get("train_config", {}).get("curve_unit", "epoch")  # boosting: "round"
    ax.set_yscale("log")
    ax.set_xlabel(unit)
    ax.set_ylabel(f"training loss / {unit}-1 loss")
    ax.set_title("training loss (mean over seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _pooled_reliability(result: dict, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    conf_sum = freq_sum = count = None
    for r in result["runs"]:
        if r["loss"] != name:
            continue
        for rel in r["reliability"].values():
            cnt = np.asarray(rel["count"], float)
            conf = np.nan_to_num(np.asarray([np.nan if v is None else v for v in rel["confidence"]], float))
            freq = np.nan_to_num(np.asarray([np.nan if v is None else v for v in rel["frequency"]], float))
            if count is None:
                conf_sum, freq_sum, count = np.zeros_like(cnt), np.zeros_like(cnt), np.zeros_like(cnt)
            conf_sum += conf * cnt
            freq_sum += freq * cnt
            count += cnt
    with np.errstate(invalid="ignore", divide="ignore"):
        return conf_sum / count, freq_sum / count, count


def figure_reliability(result: dict[str, Any]):
    """Reliability diagram per loss: fraction of positives against mean predicted probability."""
    plt = _plt()
    names = _names(result)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        conf, freq, count = _pooled_reliability(result, name)
        ok = count > 0
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        sizes = 8 + 30 * np.log10(1 + count[ok]) / max(1.0, np.log10(1 + count.max()))
        ax.plot(conf[ok], freq[ok], color="C0", lw=1)
        ax.scatter(conf[ok], freq[ok], s=sizes, color="C0", zorder=3)
        ece = result["summary"][name]["ece"]["mean"]
        ax.set_title(f"{name}\nECE {ece:.2e}" if ece is not None else name, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean predicted probability", fontsize=8)
        ax.set_ylabel("fraction positive", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("reliability of rare-class probabilities (seeds and rare classes pooled; dot size ~ log count)", fontsize=9)
    fig.tight_layout()
    return fig


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:.3em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}
.best{font-weight:bold}.clear{background:#e3f6e3}.note{color:#555;font-size:.9em}
img{max-width:100%}code,pre{background:#f6f6f6;padding:.1em .3em}pre{padding:.6em;overflow-x:auto;font-size:.8em}
"""


def render_html(result: dict[str, Any]) -> str:
    """The whole report as one HTML string (figures inline)."""
    e = html.escape
    ds = result["dataset"]
    names = _names(result)
    summary, verd = result["summary"], result["verdicts"]
    n_seeds = len(result["seeds"])
    labels = {"ap": "AP (rare, macro)", "f1": "best F1", "balanced_accuracy": "balanced accuracy",
              "ece": "ECE", "brier": "Brier", "train_time": "training time (s)"}
    head = "".join(f"<th>{e(labels[m])} {'↑' if HIGHER_IS_BETTER[m] else '↓'}</th>" for m in METRICS)
    rows = []
    for name in names:
        cells = []
        for m in METRICS:
            s = summary[name][m]
            cls = ""
            if verd[m]["best"] == name:
                cls = " class='best clear'" if verd[m]["clear"] else " class='best'"
            mark = " *" if verd[m]["best"] == name else ""
            cells.append(f"<td{cls}>{format_metric(m, s['mean'])} ± {format_metric(m, s['std'])}{mark}</td>")
        rows.append(f"<tr><td>{e(name)}</td>{''.join(cells)}</tr>")
    per_class_rows = []
    for name in names:
        for c in ds["rare_classes"]:
            aps = [r["per_class"][str(c)]["ap"] for r in result["runs"] if r["loss"] == name]
            aps = [a for a in aps if a is not None]
            mu = float(np.mean(aps)) if aps else None
            sd = float(np.std(aps, ddof=1)) if len(aps) > 1 else 0.0
            per_class_rows.append(
                f"<tr><td>{e(name)}</td><td>{e(ds['class_names'][c])}</td><td>{format_metric('ap', mu)} ± {format_metric('ap', sd)}</td></tr>"
            )
    verdict_items = "".join(
        f"<li><b>{e(labels[m])}</b>: {e(verd[m]['text'])}</li>" for m in METRICS
    )
    alphas = "".join(
        f"<tr><td>{e(name)}</td><td>{e(json.dumps(next(r['alpha'] for r in result['runs'] if r['loss'] == name)))}</td></tr>"
        for name in names
    )
    notes = "".join(f"<li>{e(n)}</li>" for n in result.get("notes", []))
    from focalkit.tools.experiments.variants import budget_text

    tries = "".join(f"<li>{e(t)}</li>" for t in budget_text(result.get("tries") or {}))
    figs = [
        ("Precision-recall curves", figure_pr(result)),
        ("Training loss", figure_loss(result)),
        ("Reliability diagrams", figure_reliability(result)),
    ]
    fig_html = "".join(
        f"<h2>{e(t)}</h2><img alt='{e(t)}' src='data:image/png;base64,{_png(f)}'>" for t, f in figs
    )
    config = json.dumps(
        {k: result[k] for k in ("config", "train_config", "seeds", "environment")}, indent=1, ensure_ascii=False
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>focalkit compare: {e(ds['name'])}</title>
<style>{_CSS}</style></head><body>
<h1>focalkit compare: {e(ds['name'])}</h1>
<p>{e(ds['description'])}. Task: {e(ds['task'])}; rare classes:
{e(', '.join(ds['class_names'][c] for c in ds['rare_classes']))}. {n_seeds} seed(s): {e(str(result['seeds']))};
created {e(result['created'])} in {result['elapsed']:.0f} s.</p>
{f"<p><b>Answer:</b> {e(result['headline'])}.</p>" if result.get('headline') else ''}
<h2>Held-out metrics (mean ± sd over seeds)</h2>
<table><tr><th>loss</th>{head}</tr>{''.join(rows)}</table>
<p class="note">* best mean; green: clearly best (its mean ± sd interval overlaps no other loss's).
AP, F1, ECE and Brier are one-vs-rest on the rare classes, macro-averaged; ECE uses 15 equal-width bins.</p>
<h2>Verdicts</h2><ul>{verdict_items}</ul>
{f'<h2>Tries per family</h2><ul>{tries}</ul>' if tries else ''}
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
{fig_html}
<h2>AP per rare class</h2><table><tr><th>loss</th><th>class</th><th>AP</th></tr>{''.join(per_class_rows)}</table>
<h2>Alpha used (first seed's training split)</h2><table><tr><th>loss</th><th>alpha</th></tr>{alphas}</table>
<h2>Configuration</h2><pre>{e(config)}</pre>
<p class="note">Generated by focalkit {e(str(result['environment']['focalkit']))}; every number is in the JSON file next to this report.</p>
</body></html>
"""


def write_html(result: dict[str, Any], path: str) -> None:
    """Write :func:`render_html` to ``path``."""
    import os

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render_html(result))
