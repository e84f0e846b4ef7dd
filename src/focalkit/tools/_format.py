"""The one number formatter of the tools: CLI tables, HTML reports and text summaries.

* :func:`format_number`: a general number in ``digits`` significant figures, in scientific
  notation outside [1e-3, 1e4) (the explain tables, the tune summaries);
* :func:`format_pm`: ``value +- std``;
* :func:`format_fixed`: a fixed number of decimals (progress lines, per-fold score lists);
* :func:`format_metric`: a held-out metric in the precision its scale needs (the compare tables).

The playground page (``explain/assets/playground.html``) re-implements :func:`format_number` in
JavaScript; ``tests/tools/explain/test_playground_browser.py`` checks both print the same text.

    >>> format_number(0.25), format_number(400.0), format_number(2.5e-5), format_number(None)
    ('0.25', '400', '2.500e-05', 'n/a')
    >>> format_metric("ap", 0.71234), format_metric("ece", 0.0004), format_pm(0.5, 0.01)
    ('0.712', '4.00e-04', '0.5 +- 0.01')
    >>> format_fixed(0.71234, 3), format_fixed(12.0, 1), format_fixed(float("nan"), 2)
    ('0.712', '12.0', 'n/a')
"""

from __future__ import annotations

import math

__all__ = ["format_fixed", "format_metric", "format_number", "format_pm"]


def format_number(v: float | None, digits: int = 4, *, missing: str = "n/a") -> str:
    """``v`` in ``digits`` significant figures; ``missing`` for None or NaN, ``inf`` for infinity."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return missing
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def format_fixed(v: float | None, decimals: int, *, missing: str = "n/a") -> str:
    """``v`` with ``decimals`` digits after the point; ``missing`` for None or NaN."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return missing
    return f"{v:.{decimals}f}"


def format_pm(value: float | None, std: float | None) -> str:
    """``value +- std`` (just the value when ``std`` is None)."""
    return format_number(value) if std is None else f"{format_number(value)} +- {format_number(std)}"


def format_metric(metric: str, v: float | None) -> str:
    """A metric value: seconds to 0.1, calibration errors to 4 decimals (scientific when tiny), others to 3."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if metric == "train_time":
        return f"{v:.1f}"
    if metric in ("ece", "brier"):
        return f"{v:.2e}" if 0 < abs(v) < 1e-3 else f"{v:.4f}"
    return f"{v:.3f}"
