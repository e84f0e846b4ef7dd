"""Figures for ``focalkit explain curves`` and ``focalkit explain family`` (needs the ``plot`` extra: matplotlib).

matplotlib is imported inside the functions, with the non-interactive Agg backend, so importing
this module costs nothing and works without a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from focalkit.tools.explain.api import FIGURE_GAMMAS, CurveData, explain_curves

__all__ = ["FIGURE_FORMATS", "curves_figure", "family_figure", "save_curves", "save_family"]

#: Output formats :func:`save_curves` writes, by file suffix.
FIGURE_FORMATS: tuple[str, ...] = ("png", "svg", "pdf")


def curves_figure(data: CurveData) -> Any:
    """The paper's Figure 1 (loss against p_t per gamma) and, beside it, ``|dFL/dx|`` on a log axis.

    Args:
        data: from :func:`focalkit.explain.explain_curves`.

    Returns:
        a ``matplotlib.figure.Figure`` with two axes (not attached to pyplot).

    Example:
        >>> from focalkit.tools.explain.api import explain_curves
        >>> fig = curves_figure(explain_curves(points=50))
        >>> len(fig.axes)
        2
    """
    if not isinstance(data, CurveData):
        raise TypeError(f"data must be a CurveData, got {type(data).__name__}")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.4), layout="constrained")
    ax_loss, ax_grad = fig.subplots(1, 2)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
              "#7f7f7f", "#bcbd22", "#17becf"]
    for i, g in enumerate(data.gammas):
        label = f"γ = {g:g}" + (" (CE)" if g == 0 else "")
        c = colors[i % len(colors)]
        ax_loss.plot(data.p_t, data.loss[i], color=c, lw=2, label=label)
        ax_grad.plot(data.p_t, data.grad[i], color=c, lw=2, label=label)
    a = "off" if data.alpha is None else f"{data.alpha:g}"
    scale = 1.0 if data.alpha is None or data.alpha == 0 else data.alpha  # curves of a positive
    ax_loss.set(xlim=(0, 1), ylim=(0, 5 * scale), xlabel="probability of ground truth class $p_t$",
                ylabel="loss", title=f"focal loss (alpha {a})")
    ax_loss.axvspan(0.6, 1.0, color="0.92", zorder=0)
    ax_loss.text(0.8, 4.6 * scale, "well-classified\nexamples", ha="center", va="top", fontsize=9)
    ax_loss.legend(loc="upper right", bbox_to_anchor=(1.0, 0.82), frameon=False)
    ax_grad.set_yscale("log")
    top = max(max(g) for g in data.grad)
    ax_grad.set(xlim=(0, 1), ylim=(1e-10, 2 * top), xlabel="probability of ground truth class $p_t$",
                ylabel="|d loss / d logit|", title="gradient magnitude (log scale)")
    ax_grad.axvspan(0.6, 1.0, color="0.92", zorder=0)
    ax_grad.grid(True, which="major", alpha=0.3)
    ax_grad.legend(loc="lower left", frameon=False)
    return fig


def save_curves(
    path: str | Path,
    gammas: Sequence[float] = FIGURE_GAMMAS,
    alpha: float | None = None,
    points: int = 400,
    dpi: int = 120,
) -> Path:
    """Compute the curves (:func:`focalkit.explain.explain_curves`) and write the figure.

    The format follows the suffix of ``path``: ``.png``, ``.svg`` or ``.pdf``.

    Example:
        >>> import tempfile, pathlib
        >>> out = save_curves(pathlib.Path(tempfile.mkdtemp()) / "c.svg", points=20)
        >>> out.read_text()[:5]
        '<?xml'
    """
    path = _figure_path(path)
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi <= 0:
        raise ValueError(f"dpi must be a positive int, got {dpi!r}")
    fig = curves_figure(explain_curves(gammas=gammas, alpha=alpha, points=points))
    return _save(fig, path, dpi)


def family_figure(result: Any) -> Any:
    """Loss and ``|d loss / d logit|`` (log axis) against p_t for each member of the focal family.

    Args:
        result: a :class:`~focalkit.tools.explain.family.FamilyResult` over many p_t values (see
            :func:`save_family`).

    Returns:
        a ``matplotlib.figure.Figure`` with two axes (not attached to pyplot); a dotted line marks
        p_t = 0.75.

    Example:
        >>> from focalkit.tools.explain.family import explain_family
        >>> fig = family_figure(explain_family(p_t=[i / 50 for i in range(1, 50)]))
        >>> len(fig.axes)
        2
    """
    from focalkit.tools.explain.family import FamilyResult

    if not isinstance(result, FamilyResult):
        raise TypeError(f"result must be a FamilyResult, got {type(result).__name__}")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.4), layout="constrained")
    ax_loss, ax_grad = fig.subplots(1, 2)
    colors = ["#444444", "#d62728", "#1f77b4", "#9467bd", "#2ca02c", "#ff7f0e"]
    for i, m in enumerate(result.members):
        style = {"color": colors[i % len(colors)], "lw": 2.2 if i else 1.6, "ls": "--" if i == 0 else "-"}
        ax_loss.plot(result.p_t, m.loss, label=m.name, **style)
        ax_grad.plot(result.p_t, [max(g, 1e-300) for g in m.grad], label=m.name, **style)
    for ax in (ax_loss, ax_grad):
        ax.axvline(0.75, color="0.5", lw=1, ls=":")
        ax.set_xlim(0, 1)
        ax.set_xlabel("probability of ground truth class $p_t$")
    ax_loss.set(ylim=(0, 5), ylabel="loss", title="the focal family (alpha off; a negative example)")
    ax_loss.legend(loc="upper right", frameon=False)
    ax_grad.set_yscale("log")
    top = max(max(m.grad) for m in result.members)
    ax_grad.set(ylim=(1e-8, 2 * top), ylabel="|d loss / d logit|",
                title="gradient magnitude (log scale); dotted: p_t = 0.75")
    ax_grad.grid(True, which="major", alpha=0.3)
    ax_grad.legend(loc="lower left", frameon=False)
    return fig


def save_family(
    path: str | Path,
    points: int = 400,
    dpi: int = 120,
    **params: Any,
) -> Path:
    """Compute the family's curves (``points`` p_t values in [1e-3, 1 - 1e-4]) and write the figure.

    ``params`` go to :func:`~focalkit.tools.explain.family.explain_family` (gamma, epsilon,
    gamma_neg, clip, flsd53). The format follows the suffix: ``.png``, ``.svg`` or ``.pdf``.
    """
    from focalkit.tools.explain.family import explain_family

    path = _figure_path(path)
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an int >= 2, got {points!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi <= 0:
        raise ValueError(f"dpi must be a positive int, got {dpi!r}")
    lo, hi = 1e-3, 1.0 - 1e-4
    p_t = [lo + (hi - lo) * i / (points - 1) for i in range(points)]
    fig = family_figure(explain_family(p_t=p_t, **params))
    return _save(fig, path, dpi)


def _figure_path(path: Any) -> Path:
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or Path, got {type(path).__name__}")
    path = Path(path)
    if path.suffix.lower().lstrip(".") not in FIGURE_FORMATS:
        raise ValueError(f"path must end in one of {', '.join('.' + f for f in FIGURE_FORMATS)}; "
                         f"got {str(path)!r}")
    return path


def _save(fig: Any, path: Path, dpi: int) -> Path:
    fmt = path.suffix.lower().lstrip(".")
    path.parent.mkdir(parents=True, exist_ok=True)
    # fixed metadata: the same command writes the same file
    metadata = {"png": {"Software": "focalkit"}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}
    fig.savefig(path, format=fmt, dpi=dpi, metadata=metadata[fmt])
    return path
