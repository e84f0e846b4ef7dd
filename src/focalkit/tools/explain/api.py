"""What alpha and gamma do, in numbers: the four-case table, loss shares and curve data.

Pure functions returning dataclasses (``to_dict()`` for JSON). Every loss value comes from
:func:`focalkit.sigmoid_focal_loss` with ``reduction="none"`` in float64, and every gradient from
autograd through it; nothing here re-types the focal-loss formula. The only definitions written
out are the two inputs the table reports next to the losses,

    p_t     = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)

(the paper's notation). The command line (``focalkit explain ...``) lives in
:mod:`focalkit.tools.explain.cli`, the figure in :mod:`focalkit.tools.explain.plots`, the interactive page in
:mod:`focalkit.tools.explain.playground`.

    >>> from focalkit.tools.explain.api import explain_table
    >>> [round(r.ratio, 2) for r in explain_table(gamma=2.0, alpha=0.25).rows]
    [400.0, 133.33, 4.94, 1.65]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import torch

from focalkit import _validation as V
from focalkit.functional import sigmoid_focal_loss

__all__ = [
    "DEFAULT_CASES",
    "FIGURE_GAMMAS",
    "CaseRow",
    "CurveData",
    "ShareRow",
    "SharesResult",
    "TableResult",
    "explain_curves",
    "explain_shares",
    "explain_table",
]

#: The four cases of the table: (name, p = predicted probability of the positive class, y).
DEFAULT_CASES: tuple[tuple[str, float, float], ...] = (
    ("easy positive", 0.9, 1.0),
    ("easy negative", 0.1, 0.0),
    ("hard positive", 0.1, 1.0),
    ("hard negative", 0.9, 0.0),
)
#: The gammas of the paper's Figure 1.
FIGURE_GAMMAS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 5.0)

_DT = torch.float64


# --------------------------------------------------------------------------- validation
def _check_alpha(alpha: Any) -> float | None:
    return None if alpha is None else V.check_alpha_scalar(alpha)


def _check_gammas(gammas: Any) -> tuple[float, ...]:
    if isinstance(gammas, (str, bytes)) or not isinstance(gammas, Sequence):
        raise TypeError(f"gammas must be a sequence of numbers, got {type(gammas).__name__}")
    if len(gammas) == 0:
        raise ValueError("gammas must not be empty")
    return tuple(V.check_gamma(g, "gammas") for g in gammas)


def _logit(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p) - torch.log1p(-p)


def _fl(logits: torch.Tensor, targets: torch.Tensor, alpha: float | None, gamma: float,
        weight: torch.Tensor | None = None) -> torch.Tensor:
    return sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="none",
                              weight=weight)


def _nan_to_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class CaseRow:
    """One example: its probability ``p`` of the positive class, label ``y`` and what the loss does.

    ``ratio = ce / focal`` is how many times less the example counts under focal loss than under
    plain cross-entropy (``inf`` when the focal loss is 0, e.g. alpha_t = 0).
    """

    name: str
    p: float
    y: float
    p_t: float
    alpha_t: float
    modulating: float
    ce: float
    focal: float
    ratio: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = _nan_to_none(self.ratio)
        return d


@dataclass(frozen=True)
class TableResult:
    """The table of :func:`explain_table` with the gamma and alpha it was computed for."""

    gamma: float
    alpha: float | None
    rows: list[CaseRow]

    def to_dict(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "alpha": self.alpha, "rows": [r.to_dict() for r in self.rows]}


def explain_table(
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    cases: Sequence[tuple[str, float, float]] | None = None,
) -> TableResult:
    """How much easy and hard examples count under focal loss compared with cross-entropy.

    For each case (``name``, ``p`` = predicted probability of the positive class, ``y`` = label in
    [0, 1], soft labels allowed):

    - ``p_t = p*y + (1-p)*(1-y)``, ``alpha_t = alpha*y + (1-alpha)*(1-y)`` (1 when alpha is None);
    - ``ce`` = ``fk.sigmoid_focal_loss(x, y, alpha=None, gamma=0)`` with ``x = logit(p)``, i.e.
      binary cross-entropy ``-log p_t`` for hard labels;
    - ``modulating`` = ``fk.sigmoid_focal_loss(x, y, alpha=None, gamma=gamma) / ce``, which is
      ``(1 - p_t) ** gamma``;
    - ``focal`` = ``fk.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma)``
      ``= alpha_t * (1 - p_t) ** gamma * ce``, and ``ratio = ce / focal``.

    Args:
        gamma: focusing parameter, >= 0.
        alpha: weight of positives in [0, 1], or None (off).
        cases: the examples; default :data:`DEFAULT_CASES` (easy/hard positive/negative at
            p = 0.9 / 0.1).

    Returns:
        :class:`TableResult`; with the defaults the ratios are 400, 133.3, 4.94 and 1.65.

    Example:
        >>> t = explain_table(gamma=2.0, alpha=0.25, cases=[("mine", 0.7, 1)])
        >>> round(t.rows[0].modulating, 4), round(t.rows[0].ratio, 2)
        (0.09, 44.44)
    """
    gamma = V.check_gamma(gamma)
    alpha = _check_alpha(alpha)
    cases = DEFAULT_CASES if cases is None else cases
    if isinstance(cases, (str, bytes)) or not isinstance(cases, Sequence):
        raise TypeError(f"cases must be a sequence of (name, p, y), got {type(cases).__name__}")
    if len(cases) == 0:
        raise ValueError("cases must not be empty")
    names, ps, ys = [], [], []
    for i, case in enumerate(cases):
        if not isinstance(case, (tuple, list)) or len(case) != 3:
            raise TypeError(f"cases[{i}] must be a (name, p, y) triple, got {case!r}")
        name, p, y = case
        ps.append(V.check_probability(f"cases[{i}] p", p))
        y = V.check_real(f"cases[{i}] y", y)
        if not 0.0 <= y <= 1.0:
            raise ValueError(f"cases[{i}] y must be in [0, 1], got {y}")
        ys.append(y)
        names.append(str(name))
    p = torch.tensor(ps, dtype=_DT)
    y = torch.tensor(ys, dtype=_DT)
    x = _logit(p)
    with torch.no_grad():
        ce = _fl(x, y, None, 0.0)
        modulated = _fl(x, y, None, gamma)
        focal = _fl(x, y, alpha, gamma)
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = torch.ones_like(y) if alpha is None else alpha * y + (1 - alpha) * (1 - y)
    rows = []
    for i in range(len(names)):
        c, m, f = float(ce[i]), float(modulated[i]), float(focal[i])
        rows.append(CaseRow(
            name=names[i], p=ps[i], y=ys[i], p_t=float(p_t[i]), alpha_t=float(alpha_t[i]),
            modulating=m / c if c > 0 else float((1 - p_t[i]) ** gamma),
            ce=c, focal=f, ratio=c / f if f > 0 else math.inf,
        ))
    return TableResult(gamma=gamma, alpha=alpha, rows=rows)


# --------------------------------------------------------------------------- the shares
@dataclass(frozen=True)
class ShareRow:
    """Total loss of each group under one loss, and the positives' share of the total."""

    loss: str
    gamma: float
    alpha: float | None
    negatives_total: float
    positives_total: float
    positive_share: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["positive_share"] = _nan_to_none(self.positive_share)  # 0/0 (nothing counts): null
        return d


@dataclass(frozen=True)
class SharesResult:
    """The inputs of :func:`explain_shares` and one :class:`ShareRow` per loss."""

    negatives: int
    p_negative: float
    positives: int
    p_positive: float
    alpha: float | None
    rows: list[ShareRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("negatives", "p_negative", "positives", "p_positive",
                                           "alpha")}
        d["rows"] = [r.to_dict() for r in self.rows]
        return d


def explain_shares(
    negatives: int = 1_000_000,
    p_negative: float = 0.99,
    positives: int = 10,
    p_positive: float = 0.01,
    gammas: Sequence[float] = (0.5, 1.0, 2.0, 5.0),
    alpha: float | None = 0.25,
) -> SharesResult:
    """Which group the loss listens to: many easy negatives against a few hard positives.

    ``p_negative`` and ``p_positive`` are the probabilities the model gives each group's *true*
    class (p_t): 0.99 for the easy negatives (probability 0.01 of being positive), 0.01 for the
    hard positives. The group totals are ``fk.sigmoid_focal_loss(x, y, weight=count,
    reduction="none")`` for one logit per group, and ``positive_share = positives_total /
    (positives_total + negatives_total)``. Rows: cross-entropy (alpha off, gamma 0),
    alpha-balanced cross-entropy (gamma 0) and focal loss for each gamma.

    Args:
        negatives, positives: the group sizes (>= 0, not both 0).
        p_negative, p_positive: p_t of each group, in (0, 1).
        gammas: focal-loss gammas (>= 0).
        alpha: weight of positives in [0, 1], or None (then balanced CE equals CE).

    Returns:
        :class:`SharesResult`; with the defaults the positives' share is 0.0046 under
        cross-entropy and 0.937 under focal loss with gamma 2.

    Example:
        >>> s = explain_shares(gammas=[2.0])
        >>> [round(r.positive_share, 4) for r in s.rows]
        [0.0046, 0.0015, 0.9374]
    """
    negatives = V.check_count("negatives", negatives)
    positives = V.check_count("positives", positives)
    if negatives + positives == 0:
        raise ValueError("negatives and positives must not both be 0")
    p_negative = V.check_probability("p_negative", p_negative)
    p_positive = V.check_probability("p_positive", p_positive)
    gammas = _check_gammas(gammas)
    alpha = _check_alpha(alpha)
    # one logit per group: the negatives' probability of being positive is 1 - p_negative
    x = _logit(torch.tensor([1.0 - p_negative, p_positive], dtype=_DT))
    y = torch.tensor([0.0, 1.0], dtype=_DT)
    w = torch.tensor([float(negatives), float(positives)], dtype=_DT)
    specs = [("cross-entropy", None, 0.0), ("alpha-balanced CE", alpha, 0.0)]
    specs += [(f"focal gamma={g:g}", alpha, g) for g in gammas]
    rows = []
    with torch.no_grad():
        for name, a, g in specs:
            totals = _fl(x, y, a, g, weight=w)
            neg, pos = float(totals[0]), float(totals[1])
            tot = neg + pos
            rows.append(ShareRow(loss=name, gamma=g, alpha=a, negatives_total=neg,
                                 positives_total=pos,
                                 positive_share=pos / tot if tot > 0 else math.nan))
    return SharesResult(negatives=negatives, p_negative=p_negative, positives=positives,
                        p_positive=p_positive, alpha=alpha, rows=rows)


# --------------------------------------------------------------------------- the curves
@dataclass(frozen=True)
class CurveData:
    """Loss and gradient magnitude against p_t for each gamma (the paper's Figure 1 and beside it).

    ``loss[i][j]`` and ``grad[i][j]`` belong to ``gammas[i]`` and ``p_t[j]``; ``ce`` is the
    cross-entropy curve for reference.
    """

    p_t: list[float]
    gammas: list[float]
    alpha: float | None
    loss: list[list[float]]
    grad: list[list[float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def explain_curves(
    gammas: Sequence[float] = FIGURE_GAMMAS,
    alpha: float | None = None,
    points: int = 400,
    p_min: float = 1e-3,
    p_max: float = 1.0 - 1e-4,
) -> CurveData:
    """Focal loss and ``|d loss / d logit|`` of a positive example against its p_t.

    With ``x = logit(p_t)`` and ``y = 1``, ``loss = fk.sigmoid_focal_loss(x, 1, alpha, gamma,
    reduction="none")`` and ``grad = |autograd.grad(loss, x)|``, which is
    ``alpha_t (1-p_t)^gamma ((1-p_t) - gamma p_t log p_t)``: for gamma > 0 it vanishes like
    ``(1-p_t)^(gamma+1)`` as p_t -> 1, so well-classified examples barely move the weights, while
    cross-entropy's gradient only falls like ``1 - p_t``. (By symmetry a negative with the same p_t
    has the same curves, with alpha_t = 1 - alpha.)

    Args:
        gammas: the curves (>= 0); default the paper's 0, 0.5, 1, 2, 5.
        alpha: weight of positives in [0, 1], or None (off, as in the paper's figure).
        points: number of p_t values (>= 2), evenly spaced in [p_min, p_max].
        p_min, p_max: the range of p_t, 0 < p_min < p_max < 1.

    Returns:
        :class:`CurveData` with lists of floats (shape ``(len(gammas), points)``).

    Example:
        >>> c = explain_curves(gammas=[0.0, 2.0], points=3, p_min=0.1, p_max=0.9)
        >>> [round(v, 4) for v in c.loss[1]]
        [1.8651, 0.1733, 0.0011]
    """
    gammas = _check_gammas(gammas)
    alpha = _check_alpha(alpha)
    if isinstance(points, bool) or not isinstance(points, int):
        raise TypeError(f"points must be an int, got {type(points).__name__}")
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    p_min = V.check_probability("p_min", p_min)
    p_max = V.check_probability("p_max", p_max)
    if not p_min < p_max:
        raise ValueError(f"p_min must be < p_max, got {p_min} and {p_max}")
    p_t = torch.linspace(p_min, p_max, points, dtype=_DT)
    y = torch.ones_like(p_t)
    losses, grads = [], []
    for g in gammas:
        x = _logit(p_t).requires_grad_(True)
        loss = _fl(x, y, alpha, g)
        (gx,) = torch.autograd.grad(loss.sum(), x)
        losses.append(loss.detach().tolist())
        grads.append(gx.abs().tolist())
    return CurveData(p_t=p_t.tolist(), gammas=list(gammas), alpha=alpha, loss=losses, grad=grads)
