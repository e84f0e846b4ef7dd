"""A plain float64 NumPy reference of both focal losses: the specification the tests compare against.

Written straight from the formula of Lin et al. (2017), "Focal Loss for Dense Object Detection",
with no attempt at speed, and independently of the PyTorch code paths::

    FL(p_t) = -alpha_t * (1 - p_t) ** gamma * log(p_t)

Everything is converted to float64 NumPy arrays first. The functions accept the same arguments as
:func:`focalkit.sigmoid_focal_loss` and :func:`focalkit.softmax_focal_loss` (``validate_args``
excepted: the reference trusts its input) and return a float64 NumPy array (0-d for ``"mean"``
and ``"sum"``).

Example:
    >>> import numpy as np
    >>> from focalkit.testing import reference
    >>> float(reference.sigmoid_focal_loss(np.array([0.0]), np.array([1.0]), gamma=0.0, alpha=None))
    0.6931471805599453
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sigmoid_focal_grad", "sigmoid_focal_loss", "softmax_focal_grad", "softmax_focal_loss"]


def _np(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu()
        if a.dtype.is_floating_point:
            a = a.double()
        a = a.numpy()
    return np.asarray(a)


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    # log(1 / (1 + exp(-x))) = -log(exp(0) + exp(-x))
    return -np.logaddexp(0.0, -x)


def _reduce(loss: np.ndarray, count: float, reduction: str, normalizer: Any) -> np.ndarray:
    if normalizer is not None:
        n = float(_np(normalizer))
        return np.asarray(loss.sum() / (n if n != 0 else 1.0))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.asarray(loss.sum())
    return np.asarray(loss.sum() / max(count, 1.0))


def sigmoid_focal_loss(
    logits: Any,
    targets: Any,
    *,
    alpha: Any = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
    weight: Any = None,
    normalizer: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    epsilon: float = 0.0,
) -> np.ndarray:
    """Float64 reference of the sigmoid (binary / multi-label) focal loss.

    Per element, with ``p = sigmoid(x)`` and target ``t`` in [0, 1]::

        p_t = p * t + (1 - p) * (1 - t)
        alpha_t = alpha * t + (1 - alpha) * (1 - t)          (1 when alpha is None)
        ce = -(t * log(p) + (1 - t) * log(1 - p))
        loss = alpha_t * (1 - p_t) ** gamma * ce + epsilon * (1 - p_t) ** (gamma + 1)

    (Poly-1, Leng et al. 2022: ``epsilon``; alpha multiplies only the focal term, ``weight`` both.)
    ``gamma`` may be a :class:`focalkit.PiecewiseGamma` (anything with ``.thresholds`` and
    ``.values``): gamma(p_t) = values[i] for the i thresholds at or below p_t.

    Integer targets with the class dimension (1) removed are class indices; the value C is
    background and ``ignore_index`` drops the whole position.
    """
    loss, count = _sigmoid_elementwise(
        logits, targets, alpha=alpha, gamma=gamma, weight=weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, epsilon=epsilon,
    )
    return _reduce(loss, count, reduction, normalizer)


def _sigmoid_elementwise(
    logits: Any, targets: Any, *, alpha: Any = 0.25, gamma: Any = 2.0, weight: Any = None,
    ignore_index: int | None = None, label_smoothing: float = 0.0, epsilon: float = 0.0,
) -> tuple[np.ndarray, float]:
    x = _np(logits).astype(np.float64)
    t, valid = _sigmoid_targets(x, _np(targets), ignore_index, label_smoothing)
    log_p = _log_sigmoid(x)
    log_1mp = _log_sigmoid(-x)
    p = np.exp(log_p)
    p_neg = np.exp(log_1mp)  # 1 - p, without the cancellation of 1 - p for p near 1
    ce = -(t * log_p + (1.0 - t) * log_1mp)
    # 1 - p_t = 1 - (p t + (1 - p)(1 - t)) = p (1 - t) + (1 - p) t: a sum of non-negative terms, exact
    # to float64 rounding even when p_t is within 1e-16 of 1 (well-classified elements)
    one_minus_p_t = p * (1.0 - t) + p_neg * t
    g = piecewise_gamma(gamma, 1.0 - one_minus_p_t)
    if alpha is None:
        alpha_t = np.ones_like(x)
    else:
        a = _np(alpha).astype(np.float64)
        if a.ndim == 1 and x.ndim >= 2 and a.shape[0] == x.shape[1]:
            a = a.reshape((1, -1) + (1,) * (x.ndim - 2))
        alpha_t = a * t + (1.0 - a) * (1.0 - t)
    loss = alpha_t * one_minus_p_t**g * ce + epsilon * one_minus_p_t ** (g + 1.0)
    if weight is not None:
        loss = loss * _np(weight).astype(np.float64)
    return np.where(valid, loss, 0.0), float(valid.sum())


def piecewise_gamma(gamma: Any, p_t: np.ndarray) -> Any:
    """gamma at each p_t: the number itself, or a PiecewiseGamma's value of its interval."""
    if not hasattr(gamma, "thresholds"):
        return float(gamma)
    idx = np.searchsorted(np.asarray(gamma.thresholds, dtype=np.float64), p_t, side="right")
    return np.asarray(gamma.values, dtype=np.float64)[idx]


def _sigmoid_targets(
    x: np.ndarray, y: np.ndarray, ignore_index: int | None, label_smoothing: float, scores: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Float64 targets of the logits' shape and the validity mask (class indices expanded)."""
    if y.shape == x.shape:
        valid = np.ones(x.shape, dtype=bool) if ignore_index is None else (y != ignore_index)
        t = np.where(valid, y, 0).astype(np.float64)
    else:  # class indices along dimension 1
        c = x.shape[1]
        valid_pos = np.ones(y.shape, dtype=bool) if ignore_index is None else (y != ignore_index)
        t = np.zeros(x.shape, dtype=np.float64)
        for k in range(c):
            sl = (slice(None), k) + (slice(None),) * (x.ndim - 2)
            t[sl] = ((y == k) & valid_pos).astype(np.float64)
        valid = np.broadcast_to(np.expand_dims(valid_pos, 1), x.shape)
        if scores is not None:
            t = t * np.expand_dims(_np(scores).astype(np.float64), 1)
    return t * (1.0 - label_smoothing) + 0.5 * label_smoothing, valid


def _factor(grad_output: Any, count: float, reduction: str, normalizer: Any) -> Any:
    """d(reduced loss)/d(per-entry loss), per the reduction rule of ``_reduce``."""
    if normalizer is not None:
        n = float(_np(normalizer))
        return 1.0 / (n if n != 0 else 1.0)
    if reduction == "none":
        return 1.0 if grad_output is None else _np(grad_output).astype(np.float64)
    if reduction == "sum":
        return 1.0
    return 1.0 / max(count, 1.0)


def _central_difference(f: Any, x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Fourth-order central difference of an entry-wise function f (same shape in and out)."""
    return (8.0 * (f(x + steps) - f(x - steps)) - (f(x + 2 * steps) - f(x - 2 * steps))) / (12.0 * steps)


def _steps(x: np.ndarray, step: float | None = None) -> np.ndarray:
    """Per-entry steps: ``step`` everywhere when given, else 1e-3 * max(1, |x|)."""
    if step is not None:
        return np.full(x.shape, float(step))
    return 1e-3 * np.maximum(1.0, np.abs(x))


def sigmoid_focal_grad(
    logits: Any, targets: Any, *, grad_output: Any = None, step: float | None = None, **kwargs: Any
) -> np.ndarray:
    """d(loss)/d(logits) of :func:`sigmoid_focal_loss`, by finite differences of that float64 loss.

    Independent of every analytic derivation in focalkit: a fourth-order central difference
    (error about 1e-10 relative for moderate logits). For ``reduction="none"`` it is the gradient
    of ``sum(grad_output * loss)`` (``grad_output`` defaults to ones). ``step``: an absolute step for
    every entry (default 1e-3 * max(1, |x|), relative for large logits; an absolute step such as 1e-3
    suits logits of 1e4 that differ by O(1), where a relative step would swamp the differences).
    Same keyword arguments as :func:`sigmoid_focal_loss`.

    Example:
        >>> import numpy as np
        >>> g = sigmoid_focal_grad(np.array([0.0]), np.array([1.0]), alpha=None, gamma=0.0)
        >>> round(float(g[0]), 8)  # d/dx BCE(x, 1) = sigmoid(x) - 1
        -0.5
    """
    x = _np(logits).astype(np.float64)
    reduction = kwargs.pop("reduction", "mean")
    normalizer = kwargs.pop("normalizer", None)

    def per_element(z: np.ndarray) -> np.ndarray:
        return _sigmoid_elementwise(z, targets, **kwargs)[0]

    count = _sigmoid_elementwise(x, targets, **kwargs)[1]
    return _central_difference(per_element, x, _steps(x, step)) * _factor(grad_output, count, reduction, normalizer)


def softmax_focal_loss(
    logits: Any,
    targets: Any,
    *,
    alpha: Any = None,
    gamma: float = 2.0,
    reduction: str = "mean",
    weight: Any = None,
    normalizer: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    epsilon: float = 0.0,
) -> np.ndarray:
    """Float64 reference of the softmax (multi-class) focal loss.

    Per position, with ``p = softmax(x)`` over dimension 1 and target distribution ``t``::

        loss = -sum_c alpha_c * t_c * (1 - p_c) ** gamma * log(p_c) + epsilon * (1 - p_t) ** (gamma + 1)

    with p_t = sum_c t_c p_c (Poly-1, Leng et al. 2022, their form for soft targets). A
    PiecewiseGamma gamma is taken at p_c in the focal term and at p_t in the Poly-1 term.

    Hard labels are one-hot ``t``; label smoothing mixes ``t`` with the uniform distribution as
    ``F.cross_entropy`` does.
    """
    loss, count = _softmax_elementwise(
        logits, targets, alpha=alpha, gamma=gamma, weight=weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, epsilon=epsilon,
    )
    return _reduce(loss, count, reduction, normalizer)


def _softmax_elementwise(
    logits: Any, targets: Any, *, alpha: Any = None, gamma: Any = 2.0, weight: Any = None,
    ignore_index: int = -100, label_smoothing: float = 0.0, epsilon: float = 0.0,
) -> tuple[np.ndarray, float]:
    x = _np(logits).astype(np.float64)
    y = _np(targets)
    c = x.shape[1]
    log_p, one_minus_p = _log_softmax_and_complement(x)
    if y.shape == x.shape:  # class probabilities
        t = y.astype(np.float64)
        valid = np.ones((x.shape[0],) + x.shape[2:], dtype=bool)
    else:
        valid = y != ignore_index
        t = np.zeros(x.shape, dtype=np.float64)
        for k in range(c):
            sl = (slice(None), k) + (slice(None),) * (x.ndim - 2)
            t[sl] = ((y == k) & valid).astype(np.float64)
    t = t * (1.0 - label_smoothing) + label_smoothing / c
    a = np.ones(c) if alpha is None else _np(alpha).astype(np.float64).reshape(c)
    a = a.reshape((1, c) + (1,) * (x.ndim - 2))
    p = np.exp(log_p)
    focal = a * t * one_minus_p ** piecewise_gamma(gamma, p) * log_p
    loss = -np.where(t != 0, focal, 0.0).sum(axis=1)
    if epsilon:
        # 1 - p_t = sum_c t_c (1 - p_c) + (1 - sum_c t_c): the same number, without cancellation
        u = np.maximum((t * one_minus_p).sum(axis=1) + (1.0 - t.sum(axis=1)), 0.0)
        g_t = piecewise_gamma(gamma, (t * p).sum(axis=1))
        loss = loss + epsilon * u ** (g_t + 1.0)
    if weight is not None:
        loss = loss * _np(weight).astype(np.float64)
    return np.where(valid, loss, 0.0), float(valid.sum())


def _log_softmax_and_complement(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log p and 1 - p along dimension 1, both to float64 rounding even for p within 1e-16 of 1.

    With e_j = exp(x_j - max x) (1 at the arg max): 1 - p_c = (sum of e_j for j != c) / sum_j e_j, the
    sum over the other classes taken from prefix and suffix sums (no subtraction), and
    log(sum_j e_j) = log1p(sum of the e_j other than the arg max's).
    """
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    zero = np.zeros_like(e[:, :1])
    before = np.concatenate([zero, np.cumsum(e, axis=1)[:, :-1]], axis=1)
    after = np.concatenate([np.flip(np.cumsum(np.flip(e, axis=1), axis=1), axis=1)[:, 1:], zero], axis=1)
    others = before + after  # sum of e_j over j != c
    top = np.expand_dims(np.argmax(x, axis=1), 1)
    log_sum = np.log1p(np.take_along_axis(others, top, axis=1))
    return (x - m) - log_sum, others / np.exp(log_sum)


def softmax_focal_grad(
    logits: Any, targets: Any, *, grad_output: Any = None, step: float | None = None, **kwargs: Any
) -> np.ndarray:
    """d(loss)/d(logits) of :func:`softmax_focal_loss`, by finite differences of that float64 loss.

    One class column is perturbed at a time (the loss of a position depends on all of its
    classes), with the fourth-order central difference (and the ``step`` rule) of
    :func:`sigmoid_focal_grad`. For ``reduction="none"`` it is the gradient of
    ``sum(grad_output * loss)``.

    Example:
        >>> import numpy as np
        >>> g = softmax_focal_grad(np.zeros((1, 2)), np.array([0]), gamma=0.0)
        >>> np.round(g, 8).tolist()  # softmax(x) - onehot(y)
        [[-0.5, 0.5]]
    """
    x = _np(logits).astype(np.float64)
    reduction = kwargs.pop("reduction", "mean")
    normalizer = kwargs.pop("normalizer", None)
    count = _softmax_elementwise(x, targets, **kwargs)[1]
    factor = _factor(grad_output, count, reduction, normalizer)
    grad = np.zeros_like(x)
    for k in range(x.shape[1]):
        sl = (slice(None), k) + (slice(None),) * (x.ndim - 2)
        h = _steps(x[sl], step)

        def per_position(col: np.ndarray, sl: Any = sl) -> np.ndarray:
            z = x.copy()
            z[sl] = col
            return _softmax_elementwise(z, targets, **kwargs)[0]

        grad[sl] = _central_difference(per_position, x[sl], h) * factor
    return grad
