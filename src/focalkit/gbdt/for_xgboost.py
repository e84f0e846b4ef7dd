"""Focal loss for XGBoost (>= 2.0): custom objective, eval metric, prior base margin.

``xgb.train`` takes ``obj=f(preds, dtrain)`` and ``custom_metric=f(preds, dmatrix)``; the
scikit-learn API takes ``XGBClassifier(objective=f(y_true, y_pred, sample_weight=None))``. With a
custom objective XGBoost starts from ``base_score`` read as a *margin* (0.5 by default, not a
probability), so pass the prior as the DMatrix's ``base_margin`` for training **and** prediction
(:func:`predict_proba` does)::

    import xgboost as xgb
    from focalkit.gbdt import for_xgboost as fx

    prior = fx.base_margin(y)                       # (N,) log-odds of the positive rate
    dtrain = xgb.DMatrix(X, y, base_margin=prior)
    booster = xgb.train({"disable_default_eval_metric": 1}, dtrain, 200,
                        obj=fx.objective(gamma=2.0), custom_metric=fx.metric(gamma=2.0))
    proba = fx.predict_proba(booster, X_test, fx.base_margin(y, n=len(X_test)))

Multi-class: ``params["num_class"] = K``; margins are (N, K), ``alpha`` is K per-class weights and
the Hessian is doubled as XGBoost's own ``multi:softprob`` does, so that ``gamma=0`` reproduces it.
Sample weights (``DMatrix(weight=...)``) multiply the gradient and Hessian here.
:class:`focalkit.gbdt.FocalBoostClassifier` wraps all of this.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from focalkit.gbdt.derivatives import DEFAULT_HESSIAN
from focalkit.gbdt.objective import FocalObjective, to_probabilities

__all__ = ["base_margin", "metric", "objective", "predict_proba", "sklearn_metric", "sklearn_objective"]

METRIC_NAME = "focal_loss"
MULTICLASS_HESS_FACTOR = 2.0  # multi:softprob's Hessian is 2 p (1 - p)


def _grad_hess(obj: FocalObjective, preds: Any, y: Any, weight: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(preds, dtype=np.float64)
    return obj.grad_hess(x, y, weight, hess_factor=MULTICLASS_HESS_FACTOR)


def objective(gamma: float = 2.0, *, alpha: Any = None, hessian: str = DEFAULT_HESSIAN
              ) -> Callable[[np.ndarray, Any], tuple[np.ndarray, np.ndarray]]:
    """``obj=`` for ``xgb.train``: ``f(preds, dtrain) -> (grad, hess)``.

    Example:
        >>> import numpy as np, xgboost as xgb
        >>> X, y = np.random.default_rng(0).normal(size=(60, 2)), np.arange(60) % 2
        >>> d = xgb.DMatrix(X, y, base_margin=base_margin(y))
        >>> booster = xgb.train({"max_depth": 2, "nthread": 1}, d, 3, obj=objective(gamma=2.0))
        >>> predict_proba(booster, X, base_margin(y, n=len(X))).shape
        (60, 2)
    """
    obj = FocalObjective(gamma=gamma, alpha=alpha, hessian=hessian)

    def focal_objective(preds: np.ndarray, dtrain: Any) -> tuple[np.ndarray, np.ndarray]:
        return _grad_hess(obj, preds, dtrain.get_label(), dtrain.get_weight())

    focal_objective.focal = obj  # type: ignore[attr-defined]
    return focal_objective


def sklearn_objective(gamma: float = 2.0, *, alpha: Any = None, hessian: str = DEFAULT_HESSIAN
                      ) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``XGBClassifier(objective=...)``: ``f(y_true, y_pred, sample_weight=None) -> (grad, hess)``.

    ``XGBClassifier`` then applies the sigmoid / softmax to ``margin + base_margin`` in
    ``predict_proba``; pass ``base_margin=`` (:func:`base_margin`) to ``fit`` and to
    ``predict_proba`` alike, or the predictions start from margin 0.
    """
    obj = FocalObjective(gamma=gamma, alpha=alpha, hessian=hessian)

    def focal_objective(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: Any = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        return _grad_hess(obj, y_pred, y_true, sample_weight)

    focal_objective.focal = obj  # type: ignore[attr-defined]
    return focal_objective


def metric(gamma: float = 2.0, *, alpha: Any = None) -> Callable[[np.ndarray, Any], tuple[str, float]]:
    """``custom_metric=`` for ``xgb.train``: the weighted mean focal loss of the margins (minimize)."""
    obj = FocalObjective(gamma=gamma, alpha=alpha)

    def focal_metric(preds: np.ndarray, dmatrix: Any) -> tuple[str, float]:
        return METRIC_NAME, obj.loss(preds, dmatrix.get_label(), dmatrix.get_weight())

    return focal_metric


def sklearn_metric(gamma: float = 2.0, *, alpha: Any = None) -> Callable[..., float]:
    """``XGBClassifier(eval_metric=...)`` with a focal objective: ``f(y_true, y_pred, sample_weight=None)``."""
    obj = FocalObjective(gamma=gamma, alpha=alpha)

    def focal_loss(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: Any = None) -> float:
        return obj.loss(y_pred, y_true, sample_weight)

    return focal_loss


def base_margin(y: Any, num_class: int | None = None, sample_weight: Any = None, *, n: int | None = None
                ) -> np.ndarray:
    """The prior for ``DMatrix(base_margin=...)``: (N,) log-odds or (N, K) log class priors.

    ``n`` repeats it for another set of N rows (an eval set, or rows to predict).

    Example:
        >>> base_margin([0, 1, 1, 2], num_class=3, n=1).round(4).tolist()
        [[-1.3863, -0.6931, -1.3863]]
    """
    prior = FocalObjective.init_score(y, num_class=num_class, sample_weight=sample_weight)
    rows = len(np.asarray(y).reshape(-1)) if n is None else int(n)
    return np.tile(prior, (rows, 1)) if prior.size > 1 else np.full(rows, prior[0])


def predict_proba(booster: Any, X: Any, margin0: Any, **predict_kwargs: Any) -> np.ndarray:
    """Probabilities (N, 2) or (N, K) of a Booster trained with a focal objective.

    ``X`` is an array (or a DMatrix); ``margin0`` the per-row base margin (:func:`base_margin`).
    """
    import xgboost as xgb

    m0 = np.asarray(margin0, dtype=np.float64)
    dm = X if isinstance(X, xgb.DMatrix) else xgb.DMatrix(X)
    dm.set_base_margin(m0)
    raw = np.asarray(booster.predict(dm, output_margin=True, **predict_kwargs), dtype=np.float64)
    return to_probabilities(raw)
