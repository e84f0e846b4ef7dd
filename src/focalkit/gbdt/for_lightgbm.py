"""Focal loss for LightGBM (>= 4.0): custom objective, eval metric, prior init score.

``lgb.train`` takes the objective as a callable in ``params["objective"]`` and the metric as
``feval``; the scikit-learn API (``LGBMClassifier``) takes callables of ``(y_true, y_pred,
weight)``. A custom objective gets no ``boost_from_average`` start, so pass the prior as the
Dataset's ``init_score``; LightGBM adds it to the scores the objective sees but **not** to
``Booster.predict`` output, so add it back (:func:`predict_proba` does)::

    import lightgbm as lgb
    from focalkit.gbdt import for_lightgbm as fl

    init = fl.init_score(y)                      # (N,) log-odds of the positive rate
    train = lgb.Dataset(X, y, init_score=init)
    params = {"objective": fl.objective(gamma=2.0), "metric": "None", "verbose": -1}
    booster = lgb.train(params, train, 200, feval=fl.metric(gamma=2.0))
    proba = fl.predict_proba(booster, X_test, init)  # (N, 2)

Multi-class: set ``params["num_class"] = K``; the margins are (N, K), ``alpha`` is K per-class
weights, and the Hessian is multiplied by K/(K-1) as LightGBM's own ``multiclass`` objective does,
so that ``gamma=0`` reproduces ``objective="multiclass"``. Sample weights are applied to the
gradient and Hessian here (LightGBM leaves that to custom objectives).
:class:`focalkit.gbdt.FocalBoostClassifier` wraps all of this.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from focalkit.gbdt.derivatives import DEFAULT_HESSIAN
from focalkit.gbdt.objective import FocalObjective, to_probabilities

__all__ = ["init_score", "metric", "objective", "predict_proba", "sklearn_metric", "sklearn_objective"]

METRIC_NAME = "focal_loss"


def _factor(preds: np.ndarray) -> float:
    k = preds.shape[1] if preds.ndim == 2 else 1
    return k / (k - 1.0) if k > 1 else 1.0


def _grad_hess(obj: FocalObjective, preds: Any, y: Any, weight: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(preds, dtype=np.float64)
    return obj.grad_hess(x, y, weight, hess_factor=_factor(x))


def objective(gamma: float = 2.0, *, alpha: Any = None, hessian: str = DEFAULT_HESSIAN
              ) -> Callable[[np.ndarray, Any], tuple[np.ndarray, np.ndarray]]:
    """``params["objective"]`` for ``lgb.train``: ``f(preds, train_data) -> (grad, hess)``.

    Example:
        >>> import numpy as np, lightgbm as lgb
        >>> X, y = np.random.default_rng(0).normal(size=(60, 2)), np.arange(60) % 2
        >>> params = {"objective": objective(gamma=2.0), "verbose": -1, "min_data_in_leaf": 5, "num_threads": 1}
        >>> booster = lgb.train(params, lgb.Dataset(X, y, init_score=init_score(y)), 3)
        >>> predict_proba(booster, X, init_score(y, n=len(X))).shape
        (60, 2)
    """
    obj = FocalObjective(gamma=gamma, alpha=alpha, hessian=hessian)

    def focal_objective(preds: np.ndarray, train_data: Any) -> tuple[np.ndarray, np.ndarray]:
        return _grad_hess(obj, preds, train_data.get_label(), train_data.get_weight())

    focal_objective.focal = obj  # type: ignore[attr-defined]
    return focal_objective


def sklearn_objective(gamma: float = 2.0, *, alpha: Any = None, hessian: str = DEFAULT_HESSIAN
                      ) -> Callable[[np.ndarray, np.ndarray, Any], tuple[np.ndarray, np.ndarray]]:
    """``LGBMClassifier(objective=...)``: ``f(y_true, y_pred, weight) -> (grad, hess)``.

    With a custom objective ``LGBMClassifier.predict_proba`` returns raw scores (without the
    ``init_score`` given to ``fit``); turn them into probabilities with
    :func:`focalkit.gbdt.to_probabilities` after adding the init score, or use
    :class:`focalkit.gbdt.FocalBoostClassifier`.
    """
    obj = FocalObjective(gamma=gamma, alpha=alpha, hessian=hessian)

    def focal_objective(y_true: np.ndarray, y_pred: np.ndarray, weight: Any) -> tuple[np.ndarray, np.ndarray]:
        return _grad_hess(obj, y_pred, y_true, weight)

    focal_objective.focal = obj  # type: ignore[attr-defined]
    return focal_objective


def metric(gamma: float = 2.0, *, alpha: Any = None) -> Callable[[np.ndarray, Any], tuple[str, float, bool]]:
    """``feval`` for ``lgb.train``: the weighted mean focal loss of the raw scores (lower is better).

    The scores LightGBM passes include the eval Dataset's ``init_score``, so give every eval set
    the same init score as the training set.
    """
    obj = FocalObjective(gamma=gamma, alpha=alpha)

    def focal_metric(preds: np.ndarray, eval_data: Any) -> tuple[str, float, bool]:
        return METRIC_NAME, obj.loss(preds, eval_data.get_label(), eval_data.get_weight()), False

    return focal_metric


def sklearn_metric(gamma: float = 2.0, *, alpha: Any = None) -> Callable[..., tuple[str, float, bool]]:
    """``LGBMClassifier.fit(eval_metric=...)``: ``f(y_true, y_pred, weight) -> (name, value, False)``."""
    obj = FocalObjective(gamma=gamma, alpha=alpha)

    def focal_metric(y_true: np.ndarray, y_pred: np.ndarray, weight: Any) -> tuple[str, float, bool]:
        return METRIC_NAME, obj.loss(y_pred, y_true, weight), False

    return focal_metric


def init_score(y: Any, num_class: int | None = None, sample_weight: Any = None, *, n: int | None = None
               ) -> np.ndarray:
    """The prior init score laid out for ``lgb.Dataset(init_score=...)``: (N,) or (N, K).

    Computed from the labels ``y`` (and weights); ``n`` repeats it for another set of N rows
    (an eval set, or rows to predict).

    Example:
        >>> init_score([0, 0, 0, 1]).round(4).tolist()
        [-1.0986, -1.0986, -1.0986, -1.0986]
    """
    prior = FocalObjective.init_score(y, num_class=num_class, sample_weight=sample_weight)
    rows = len(np.asarray(y).reshape(-1)) if n is None else int(n)
    return np.tile(prior, (rows, 1)) if prior.size > 1 else np.full(rows, prior[0])


def predict_proba(booster: Any, X: Any, init: Any, **predict_kwargs: Any) -> np.ndarray:
    """Probabilities (N, 2) or (N, K) from a Booster trained with a focal objective.

    ``init`` is the init score (what :func:`init_score` gave, a scalar, (K,) or per-row), added
    to the raw scores before the sigmoid / softmax.
    """
    raw = np.asarray(booster.predict(X, raw_score=True, **predict_kwargs), dtype=np.float64)
    return to_probabilities(raw + _broadcast_init(init, raw))


def _broadcast_init(init: Any, raw: np.ndarray) -> np.ndarray:
    a = np.asarray(init, dtype=np.float64)
    if raw.ndim == 1 and a.ndim == 1 and a.size == 1:
        return a[0]
    return a
