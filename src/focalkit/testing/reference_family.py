"""Float64 NumPy references of the focal family's sigmoid losses: asymmetric, quality, varifocal.

Written from the papers' formulas, with no attempt at speed and independently of the PyTorch paths
(see :mod:`focalkit.testing.reference` for the focal losses, Poly-1 and PiecewiseGamma). Per element,
with p = sigmoid(x) (log p and log(1 - p) from ``logaddexp``, exact in the tails) and target t:

* asymmetric (Ridnik et al. 2021), p_m = max(p - clip, 0)::

      -t (1 - p)^gamma_pos log p - (1 - t) p_m^gamma_neg log(1 - p_m)

* quality (Li et al. 2020): ``|t - p|^beta * ce``, ce = -(t log p + (1 - t) log(1 - p));
* varifocal (Zhang et al. 2021): ``ce * t`` (``ce`` when not iou_weighted) where t > 0, and
  ``alpha p^gamma ce`` where t = 0.

Targets: of the logits' shape, or class indices with the class dimension 1 removed (value C =
background) with ``scores`` the labelled class's target value. ``ignore_index``, ``weight``,
``normalizer`` and the reductions follow :mod:`focalkit.testing.reference`. Each ``*_grad`` is the
fourth-order central difference of its loss.

Example:
    >>> import numpy as np
    >>> from focalkit.testing import reference_family as RF
    >>> round(float(RF.asymmetric_loss(np.array([0.0]), np.array([1.0]))), 6)  # -log(1/2)
    0.693147
"""

from __future__ import annotations

from typing import Any

import numpy as np

from focalkit.testing.reference import _central_difference, _factor, _log_sigmoid, _np, _reduce, _sigmoid_targets, _steps

__all__ = [
    "asymmetric_grad",
    "asymmetric_loss",
    "quality_focal_grad",
    "quality_focal_loss",
    "varifocal_grad",
    "varifocal_loss",
]


def _parts(logits: Any, targets: Any, ignore_index: int | None, scores: Any) -> tuple[np.ndarray, ...]:
    x = _np(logits).astype(np.float64)
    t, valid = _sigmoid_targets(x, _np(targets), ignore_index, 0.0, scores)
    log_p, log_1mp = _log_sigmoid(x), _log_sigmoid(-x)
    return x, t, valid, log_p, log_1mp


def _finish(loss: np.ndarray, valid: np.ndarray, weight: Any) -> tuple[np.ndarray, float]:
    if weight is not None:
        loss = loss * _np(weight).astype(np.float64)
    return np.where(valid, loss, 0.0), float(valid.sum())


def _asymmetric(logits: Any, targets: Any, *, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05,
                weight: Any = None, ignore_index: int | None = None) -> tuple[np.ndarray, float]:
    x, t, valid, log_p, log_1mp = _parts(logits, targets, ignore_index, None)
    p, one_minus_p = np.exp(log_p), np.exp(log_1mp)
    p_m = np.maximum(p - clip, 0.0)
    # log(1 - p_m) = log((1 - p) + clip) where shifted, log(1) = 0 where p <= clip; log(1 - p) for clip 0
    log_1mpm = log_1mp if clip == 0 else np.where(p > clip, np.log(one_minus_p + clip), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = -t * one_minus_p**gamma_pos * log_p
        neg = -(1.0 - t) * p_m**gamma_neg * log_1mpm
    return _finish(pos + neg, valid, weight)


def _quality(logits: Any, targets: Any, *, beta: float = 2.0, weight: Any = None, ignore_index: int | None = None,
             scores: Any = None) -> tuple[np.ndarray, float]:
    x, t, valid, log_p, log_1mp = _parts(logits, targets, ignore_index, scores)
    p = np.exp(log_p)
    ce = -(t * log_p + (1.0 - t) * log_1mp)
    s = np.where(p > 0.5, np.abs((t - 1.0) + np.exp(log_1mp)), np.abs(t - p))  # |t - p|
    return _finish(s**beta * ce, valid, weight)


def _varifocal(logits: Any, targets: Any, *, alpha: float = 0.75, gamma: float = 2.0, iou_weighted: bool = True,
               weight: Any = None, ignore_index: int | None = None, scores: Any = None) -> tuple[np.ndarray, float]:
    x, t, valid, log_p, log_1mp = _parts(logits, targets, ignore_index, scores)
    p = np.exp(log_p)
    ce = -(t * log_p + (1.0 - t) * log_1mp)
    loss = np.where(t > 0, ce * (t if iou_weighted else 1.0), alpha * p**gamma * ce)
    return _finish(loss, valid, weight)


def _loss(elementwise: Any, logits: Any, targets: Any, reduction: str, normalizer: Any, kwargs: dict) -> np.ndarray:
    loss, count = elementwise(logits, targets, **kwargs)
    return _reduce(loss, count, reduction, normalizer)


def _grad(elementwise: Any, logits: Any, targets: Any, grad_output: Any, step: float | None, kwargs: dict) -> np.ndarray:
    x = _np(logits).astype(np.float64)
    reduction = kwargs.pop("reduction", "mean")
    normalizer = kwargs.pop("normalizer", None)
    count = elementwise(x, targets, **kwargs)[1]

    def per_element(z: np.ndarray) -> np.ndarray:
        return elementwise(z, targets, **kwargs)[0]

    return _central_difference(per_element, x, _steps(x, step)) * _factor(grad_output, count, reduction, normalizer)


def asymmetric_loss(logits: Any, targets: Any, *, reduction: str = "mean", normalizer: Any = None, **kwargs: Any) -> np.ndarray:
    """Float64 ASL: the arguments of :func:`focalkit.asymmetric_loss` (``validate_args`` aside)."""
    return _loss(_asymmetric, logits, targets, reduction, normalizer, kwargs)


def quality_focal_loss(logits: Any, targets: Any, *, reduction: str = "mean", normalizer: Any = None, **kwargs: Any) -> np.ndarray:
    """Float64 QFL: the arguments of :func:`focalkit.quality_focal_loss` (``validate_args`` aside)."""
    return _loss(_quality, logits, targets, reduction, normalizer, kwargs)


def varifocal_loss(logits: Any, targets: Any, *, reduction: str = "mean", normalizer: Any = None, **kwargs: Any) -> np.ndarray:
    """Float64 VFL: the arguments of :func:`focalkit.varifocal_loss` (``validate_args`` aside)."""
    return _loss(_varifocal, logits, targets, reduction, normalizer, kwargs)


def asymmetric_grad(logits: Any, targets: Any, *, grad_output: Any = None, step: float | None = None, **kwargs: Any) -> np.ndarray:
    """d(loss)/d(logits) of :func:`asymmetric_loss` by finite differences (``step`` as in the reference)."""
    return _grad(_asymmetric, logits, targets, grad_output, step, kwargs)


def quality_focal_grad(logits: Any, targets: Any, *, grad_output: Any = None, step: float | None = None, **kwargs: Any) -> np.ndarray:
    """d(loss)/d(logits) of :func:`quality_focal_loss` by finite differences."""
    return _grad(_quality, logits, targets, grad_output, step, kwargs)


def varifocal_grad(logits: Any, targets: Any, *, grad_output: Any = None, step: float | None = None, **kwargs: Any) -> np.ndarray:
    """d(loss)/d(logits) of :func:`varifocal_loss` by finite differences."""
    return _grad(_varifocal, logits, targets, grad_output, step, kwargs)
