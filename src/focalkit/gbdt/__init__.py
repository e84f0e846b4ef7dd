"""Focal loss for gradient boosting: LightGBM, XGBoost and CatBoost (the ``gbdt`` extra).

``pip install 'focalkit[gbdt]'`` brings the engines and scikit-learn. This package imports only
NumPy and focalkit's core when imported; each engine is imported where it is used.

* :func:`binary_focal_grad_hess`, :func:`softmax_focal_grad_hess`: gradient and Hessian of the
  sigmoid / softmax focal loss with respect to the margin, float64, with a choice of Hessian
  (:data:`HESSIANS`; the exact one is negative for badly misclassified examples);
* :func:`prior_init_score`: the class-prior start (the analogue of :func:`focalkit.prior_bias`);
* :class:`FocalObjective`: the engine-neutral objective; :mod:`~focalkit.gbdt.for_lightgbm`,
  :mod:`~focalkit.gbdt.for_xgboost`, :mod:`~focalkit.gbdt.for_catboost`: each engine's own
  custom-objective and metric forms;
* :class:`FocalBoostClassifier`: a scikit-learn classifier over any of the three engines.

    >>> import numpy as np
    >>> from focalkit.gbdt import binary_focal_grad_hess
    >>> g, h = binary_focal_grad_hess(np.array([-4.0, 0.0, 4.0]), np.array([1, 1, 1]), gamma=2.0)
    >>> bool((h >= 0).all())
    True

See docs/gbdt.md for the math, the Hessian choice and a measured comparison.
"""

from typing import Any

from focalkit.gbdt.derivatives import (
    DEFAULT_HESSIAN,
    HESSIANS,
    binary_focal_grad_hess,
    binary_focal_loss,
    prior_init_score,
    softmax_focal_grad_hess,
    softmax_focal_hessian_matrix,
    softmax_focal_loss,
)
from focalkit.gbdt.objective import FocalObjective, to_probabilities

__all__ = [
    "DEFAULT_HESSIAN",
    "FocalBoostClassifier",
    "FocalObjective",
    "HESSIANS",
    "binary_focal_grad_hess",
    "binary_focal_loss",
    "prior_init_score",
    "softmax_focal_grad_hess",
    "softmax_focal_hessian_matrix",
    "softmax_focal_loss",
    "to_probabilities",
]


def __getattr__(name: str) -> Any:
    """``FocalBoostClassifier`` is loaded on first use (it needs scikit-learn)."""
    if name == "FocalBoostClassifier":
        from focalkit.gbdt.classifier import FocalBoostClassifier

        return FocalBoostClassifier
    raise AttributeError(f"module 'focalkit.gbdt' has no attribute {name!r}")
