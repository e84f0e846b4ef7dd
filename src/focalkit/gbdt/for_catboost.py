"""Focal loss for CatBoost: objective and metric classes, prior baseline.

CatBoost takes a user-defined objective as an object with ``calc_ders_range`` (one-dimensional:
binary) or ``calc_ders_multi`` (multi-class, called once per example with the full K x K
Hessian), returning the derivatives of the quantity to *maximize* (minus the loss's). The metric
is an object with ``evaluate``, ``is_max_optimal`` and ``get_final_error``. A custom objective
gets no ``boost_from_average`` start, so pass the prior as the Pool's ``baseline``; predictions
(``RawFormulaVal``) do not include it, so add it back (:func:`predict_proba` does)::

    from catboost import CatBoostClassifier, Pool
    from focalkit.gbdt import for_catboost as fc

    prior = fc.baseline(y)
    model = CatBoostClassifier(loss_function=fc.objective(gamma=2.0, num_class=2),
                               eval_metric=fc.FocalLossMetric(gamma=2.0), iterations=200, verbose=0,
                               allow_writing_files=False)
    model.fit(Pool(X, y, baseline=prior))
    proba = fc.predict_proba(model, X_test, fc.baseline(y, n=len(X_test)))

Multi-class (:func:`objective` with ``num_class=K``) uses the full Hessian
(``softmax_focal_hessian_matrix``), as CatBoost's own ``MultiClass`` does, so that ``gamma=0``
reproduces it; pass ``classes_count=K`` to the model with :class:`FocalLossMetric`. CatBoost calls the multi-class objective
from Python once per example and iteration: expect it to be far slower than the built-in losses.
Set ``leaf_estimation_backtracking="No"`` for the same steps as a built-in loss (the default
backtracking of the built-in losses is not available to custom ones).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from focalkit.gbdt import derivatives as D
from focalkit.gbdt.objective import FocalObjective, to_probabilities

__all__ = ["FocalLossMetric", "FocalLossObjective", "SoftmaxFocalLossObjective", "baseline", "objective", "predict_proba"]


class FocalLossObjective:
    """A CatBoost ``loss_function`` object for binary labels (``calc_ders_range``, vectorised).

    Example:
        >>> import numpy as np
        >>> obj = FocalLossObjective(gamma=0.0)
        >>> obj.calc_ders_range(np.array([0.0]), np.array([1.0]), None)  # (y - p, -p (1 - p))
        [(0.5, -0.25)]
    """

    def __init__(self, gamma: float = 2.0, alpha: float | None = None, hessian: str = D.DEFAULT_HESSIAN) -> None:
        self.focal = FocalObjective(gamma=gamma, alpha=alpha, hessian=hessian)

    def calc_ders_range(self, approxes: Any, targets: Any, weights: Any) -> list[tuple[float, float]]:
        g, h = self.focal.grad_hess(np.asarray(approxes, dtype=np.float64), np.asarray(targets, dtype=np.float64),
                                    weights)
        return list(zip((-g).tolist(), (-h).tolist()))


class SoftmaxFocalLossObjective:
    """A CatBoost ``loss_function`` object for K > 2 classes (``calc_ders_multi``, full Hessian).

    CatBoost calls it once per example and iteration (from Python: slow on large data).

    Example:
        >>> import numpy as np
        >>> g, h = SoftmaxFocalLossObjective(gamma=0.0).calc_ders_multi([0.0, 0.0], 1, 1.0)
        >>> g, h  # onehot - p and -(diag(p) - p p^T)
        ([-0.5, 0.5], [[-0.25, 0.25], [0.25, -0.25]])
    """

    def __init__(self, gamma: float = 2.0, alpha: Any = None, hessian: str = D.DEFAULT_HESSIAN) -> None:
        self.focal = FocalObjective(gamma=gamma, alpha=alpha, hessian=hessian)

    def calc_ders_multi(self, approx: Any, target: Any, weight: Any) -> tuple[list[float], list[list[float]]]:
        f = self.focal
        a = 1.0 if f.alpha is None else f.alpha[int(target)]
        w = a * (1.0 if weight is None else float(weight))
        return _row_ders(list(approx), int(target), f.gamma, f.hessian, w)


def _row_ders(x: list[float], y: int, gamma: float, hessian: str, w: float) -> tuple[list[float], list[list[float]]]:
    """``-w * grad`` and ``-w * Hessian`` of one example, in plain Python (CatBoost calls this per row).

    The same formulas as :func:`focalkit.gbdt.derivatives.softmax_grad_and_matrix` (tested equal),
    written for one short vector: NumPy's per-call overhead would dominate.
    """
    k = len(x)
    m = max(x)
    ex = [math.exp(v - m) for v in x]
    tot = math.fsum(ex)
    p = [v / tot for v in ex]
    top = ex.index(1.0)  # the largest class: its 1 - p from the others, without cancellation
    om = [1.0 - v for v in p]
    om[top] = math.fsum(ex[j] for j in range(k) if j != top) / tot
    q = math.fsum(p[j] for j in range(k) if j != y)
    py = p[y]
    c = -math.log1p(-q) if q < 0.5 else -((x[y] - m) - math.log(tot))
    qg = q ** gamma if gamma != 0 else 1.0
    h1q = qg * (q + gamma * py * c)
    if q > 0:
        e = [1.0 if j == y else -p[j] / q for j in range(k)]
        h1 = qg * (1.0 + gamma * py * c / q)
    else:
        e = [1.0 if j == y else 0.0 for j in range(k)]
        h1 = qg * (1.0 + gamma * py)
    h2qq = gamma * py * qg * ((gamma - 1.0) * py * c + q * (2.0 - c))
    coef = qg if hessian == "fixed_weight" else h1
    rank1 = {"exact": h2qq, "clipped": max(h2qq, 0.0)}.get(hessian, 0.0)
    grad = [w * h1q * ej for ej in e]  # minus the gradient -h1q e, times w
    hess = [[0.0] * k for _ in range(k)]
    for i in range(k):
        for j in range(i, k):
            s = (py * q if i == y else p[i] * om[i]) if i == j else -p[i] * p[j]
            v = -w * (coef * s + rank1 * e[i] * e[j])
            hess[i][j] = hess[j][i] = v
    return grad, hess


def objective(gamma: float = 2.0, *, alpha: Any = None, hessian: str = D.DEFAULT_HESSIAN, num_class: int = 2
              ) -> FocalLossObjective | SoftmaxFocalLossObjective:
    """The objective object for ``num_class`` classes: binary (2) or softmax (more)."""
    if num_class == 2:
        return FocalLossObjective(gamma, alpha=alpha, hessian=hessian)
    return SoftmaxFocalLossObjective(gamma, alpha=alpha, hessian=hessian)


class FocalLossMetric:
    """A CatBoost ``eval_metric`` object: the weighted mean focal loss of the raw approxes (minimize).

    The approxes CatBoost passes include the Pool's ``baseline``.
    """

    def __init__(self, gamma: float = 2.0, alpha: Any = None) -> None:
        self.focal = FocalObjective(gamma=gamma, alpha=alpha)

    def is_max_optimal(self) -> bool:
        return False

    def evaluate(self, approxes: Any, target: Any, weight: Any) -> tuple[float, float]:
        cols = [np.asarray(a, dtype=np.float64) for a in approxes]
        x = cols[0] if len(cols) == 1 else np.stack(cols, axis=1)
        per = self.focal.losses(x, np.asarray(target, dtype=np.float64))
        w = np.ones_like(per) if weight is None or len(weight) == 0 else np.asarray(weight, dtype=np.float64)
        return float((w * per).sum()), float(w.sum())

    def get_final_error(self, error: float, weight: float) -> float:
        return error / weight if weight else float("nan")


def baseline(y: Any, num_class: int | None = None, sample_weight: Any = None, *, n: int | None = None) -> np.ndarray:
    """The prior for ``Pool(baseline=...)``: (N,) log-odds or (N, K) log class priors.

    Example:
        >>> baseline([1, 0, 0, 0], n=2).round(4).tolist()
        [-1.0986, -1.0986]
    """
    prior = FocalObjective.init_score(y, num_class=num_class, sample_weight=sample_weight)
    rows = len(np.asarray(y).reshape(-1)) if n is None else int(n)
    return np.tile(prior, (rows, 1)) if prior.size > 1 else np.full(rows, prior[0])


def predict_proba(model: Any, X: Any, base: Any, **predict_kwargs: Any) -> np.ndarray:
    """Probabilities (N, 2) or (N, K) of a CatBoost model trained with :class:`FocalLossObjective`.

    ``base`` is the per-row baseline (:func:`baseline`), added to the raw predictions.
    """
    raw = np.asarray(model.predict(X, prediction_type="RawFormulaVal", **predict_kwargs), dtype=np.float64)
    return to_probabilities(raw + np.asarray(base, dtype=np.float64).reshape(raw.shape))
