"""The engine-neutral focal objective: one object the LightGBM, XGBoost and CatBoost adapters share.

:class:`FocalObjective` holds ``gamma``, ``alpha`` and ``hessian`` (checked once) and gives, for a
margin array of shape (N,) (binary, sigmoid focal loss) or (N, K) (multi-class, softmax focal
loss), the weighted gradient and Hessian, the weighted mean loss (the eval metric) and the prior
init score. The shape of the margin decides which loss is meant, as the engines' own custom
objectives receive (N,) or (N, K) arrays.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from focalkit import _validation as V
from focalkit.gbdt import derivatives as D

__all__ = ["FocalObjective", "to_probabilities"]


def _weights(weight: Any, n: int) -> np.ndarray | None:
    if weight is None:
        return None
    w = np.asarray(weight, dtype=np.float64).reshape(-1)
    if w.size == 0:  # engines hand out an empty array when no weights were set
        return None
    if w.shape != (n,):
        raise ValueError(f"weight must have one value per example ({n}), got shape {w.shape}")
    return w


@dataclass(frozen=True)
class FocalObjective:
    """Focal loss as a boosting objective (see :mod:`focalkit.gbdt.derivatives` for the math).

    Attributes:
        gamma: focusing parameter >= 0.
        alpha: binary: the weight of the positive class in [0, 1] or None; multi-class: None or K
            non-negative per-class weights (stored as a tuple).
        hessian: one of :data:`focalkit.gbdt.HESSIANS`.

    Example:
        >>> import numpy as np
        >>> obj = FocalObjective(gamma=0.0)
        >>> g, h = obj.grad_hess(np.zeros(2), np.array([0, 1]), weight=np.array([1.0, 2.0]))
        >>> g.tolist(), h.tolist()
        ([0.5, -1.0], [0.25, 0.5])
    """

    gamma: float = 2.0
    alpha: Any = None
    hessian: str = D.DEFAULT_HESSIAN

    def __post_init__(self) -> None:
        object.__setattr__(self, "gamma", V.check_gamma(self.gamma))
        D.check_hessian(self.hessian)
        a = self.alpha
        if a is None or isinstance(a, numbers.Real):
            if a is not None:
                object.__setattr__(self, "alpha", D.check_binary_alpha(a))
        else:
            arr = D.check_class_alpha(a, int(np.size(a)))
            object.__setattr__(self, "alpha", tuple(float(v) for v in arr))

    # -------------------------------------------------------------------------------- helpers
    def _margin(self, margin: Any) -> np.ndarray:
        x = np.asarray(margin, dtype=np.float64)
        if x.ndim == 2 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim not in (1, 2):
            raise ValueError(f"margin must have shape (N,) or (N, K), got shape {x.shape}")
        if x.ndim == 1 and isinstance(self.alpha, tuple):
            raise ValueError(
                f"alpha has {len(self.alpha)} per-class weights but the margin is binary (one column); "
                "the binary alpha is one number, the weight of the positive class"
            )
        if x.ndim == 2 and self.alpha is not None and not isinstance(self.alpha, tuple):
            raise ValueError(
                f"alpha={self.alpha} is a binary alpha but the margin has {x.shape[1]} classes; give "
                "one weight per class"
            )
        return x

    @property
    def _kw(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "alpha": self.alpha}

    # ---------------------------------------------------------------------------------- public
    def grad_hess(self, margin: Any, y: Any, weight: Any = None, *, hess_factor: float = 1.0
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Weighted gradient and (diagonal) Hessian, each shaped like ``margin``.

        ``hess_factor`` multiplies the multi-class Hessian (the engines' own softmax uses
        K/(K-1) in LightGBM and 2 in XGBoost; the adapters pass it so that ``gamma=0`` is the
        engine's softmax).
        """
        x = self._margin(margin)
        if x.ndim == 1:
            g, h = D.binary_focal_grad_hess(x, y, hessian=self.hessian, **self._kw)
        else:
            g, h = D.softmax_focal_grad_hess(x, y, hessian=self.hessian, **self._kw)
            h = h * hess_factor
        w = _weights(weight, x.shape[0])
        if w is not None:
            w = w.reshape((-1,) + (1,) * (x.ndim - 1))
            g, h = g * w, h * w
        return g, h

    def hessian_matrix(self, margin: Any, y: Any) -> np.ndarray:
        """The (N, K, K) multi-class Hessian (:func:`~focalkit.gbdt.derivatives.softmax_focal_hessian_matrix`)."""
        x = self._margin(margin)
        if x.ndim != 2:
            raise ValueError("hessian_matrix is for multi-class margins of shape (N, K)")
        return D.softmax_focal_hessian_matrix(x, y, hessian=self.hessian, **self._kw)

    def losses(self, margin: Any, y: Any) -> np.ndarray:
        """Per-example focal loss, shape (N,)."""
        x = self._margin(margin)
        if x.ndim == 1:
            return D.binary_focal_loss(x, y, **self._kw)
        return D.softmax_focal_loss(x, y, **self._kw)

    def loss(self, margin: Any, y: Any, weight: Any = None) -> float:
        """Weighted mean focal loss ``sum(w * loss) / sum(w)`` (the eval metric)."""
        per = self.losses(margin, y)
        w = _weights(weight, per.shape[0])
        if w is None:
            return float(per.mean()) if per.size else float("nan")
        return float((w * per).sum() / w.sum())

    @staticmethod
    def init_score(y: Any, num_class: int | None = None, sample_weight: Any = None) -> np.ndarray:
        """The prior init margin (:func:`~focalkit.gbdt.derivatives.prior_init_score`)."""
        return D.prior_init_score(y, num_class=num_class, sample_weight=sample_weight)


def to_probabilities(margin: Any) -> np.ndarray:
    """Class probabilities from margins: (N,) -> (N, 2) by the sigmoid, (N, K) -> softmax rows.

    Computed stably (the two binary columns from log-sigmoid of +-margin), rows sum to 1.

    Example:
        >>> to_probabilities(np.array([0.0])).tolist()
        [[0.5, 0.5]]
    """
    x = np.asarray(margin, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim == 1:
        return np.stack([np.exp(-np.logaddexp(0.0, x)), np.exp(-np.logaddexp(0.0, -x))], axis=1)
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
