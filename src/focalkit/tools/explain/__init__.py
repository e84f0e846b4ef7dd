"""``focalkit explain``: what alpha and gamma do, in numbers, curves and an interactive page.

* :mod:`~focalkit.tools.explain.api`: the pure functions (four-case table, loss shares, curve data);
* :mod:`~focalkit.tools.explain.family`: the focal family's gradient against cross-entropy's
  (``focalkit explain family``);
* :mod:`~focalkit.tools.explain.plots`: the matplotlib figure (``focalkit explain curves``);
* :mod:`~focalkit.tools.explain.playground`: the self-contained HTML page;
* :mod:`~focalkit.tools.explain.cli`: the commands.

    >>> from focalkit.tools.explain import explain_table
    >>> [round(r.ratio, 2) for r in explain_table(gamma=2.0, alpha=0.25).rows]
    [400.0, 133.33, 4.94, 1.65]
"""

from focalkit.tools.explain.api import (
    DEFAULT_CASES,
    FIGURE_GAMMAS,
    CaseRow,
    CurveData,
    ShareRow,
    SharesResult,
    TableResult,
    explain_curves,
    explain_shares,
    explain_table,
)
from focalkit.tools.explain.family import FamilyMember, FamilyResult, explain_family

__all__ = [
    "DEFAULT_CASES",
    "FIGURE_GAMMAS",
    "CaseRow",
    "CurveData",
    "FamilyMember",
    "FamilyResult",
    "ShareRow",
    "SharesResult",
    "TableResult",
    "explain_curves",
    "explain_family",
    "explain_shares",
    "explain_table",
]
