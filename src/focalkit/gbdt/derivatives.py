r"""Gradient and Hessian of focal loss with respect to a boosting model's margin (float64 NumPy).

Gradient boosting (LightGBM, XGBoost, CatBoost) fits each tree to the first and second
derivatives of the loss with respect to the raw score (the *margin*). This module gives both for
the two focal losses of focalkit, computed from the margin through log-sigmoid / log-softmax,
never by clamping probabilities, in float64.

Write :math:`c` for the cross-entropy of an example (:math:`c = -\log p_t`), :math:`q = 1 - p_t`
and :math:`\alpha_t` for the weight of its class. For a hard label the focal loss is a function of
the cross-entropy alone,

.. math::

    FL = \alpha_t\, h(c), \qquad h(c) = (1 - e^{-c})^\gamma\, c,

so by the chain rule its gradient is :math:`\alpha_t h'(c)\,\nabla c` and its Hessian

.. math::

    \nabla^2 FL = \alpha_t \left[ h'(c)\, \nabla^2 c + h''(c)\, \nabla c\, \nabla c^\top \right],
    \qquad h'(c) = q^\gamma \left(1 + \gamma\, p_t\, \frac{c}{q}\right) \ge 0,

    h''(c)\, q^2 = \gamma\, p_t\, q^\gamma \left[(\gamma - 1)\, p_t\, c + q\, (2 - c)\right],

where :math:`\nabla^2 c` is the (positive semi-definite) Hessian of the cross-entropy,
:math:`p(1-p)` for the sigmoid and :math:`\mathrm{diag}(p) - p p^\top` for the softmax, and
:math:`\nabla c = p - y` (:math:`|\nabla c| = q` for the sigmoid). :math:`h'' < 0` for badly
misclassified examples (:math:`c > 2` roughly, :math:`p_t` below about 0.02-0.08 once the first
term is added), which makes the exact Hessian negative there. The ``hessian=`` choices:

* ``"exact"``: the true second derivative above (may be negative);
* ``"clipped"``: the exact Hessian with the negative part of its :math:`h''` term dropped,
  :math:`\alpha_t[h'\nabla^2 c + \max(h'', 0)\,\nabla c\nabla c^\top]` (elementwise
  :math:`\max(\text{exact}, \text{gauss\_newton})`); never negative;
* ``"gauss_newton"``: :math:`\alpha_t h'(c)\, \nabla^2 c`, the Gauss-Newton / Fisher-type
  curvature of the outer function :math:`h` composed with the convex cross-entropy; never negative;
* ``"fixed_weight"``: :math:`\alpha_t (1 - p_t)^\gamma\, \nabla^2 c`, the curvature of a
  cross-entropy whose focal factor is held fixed as a sample weight; never negative.

At :math:`\gamma = 0` all four are the logistic / softmax Hessian :math:`\alpha_t \nabla^2 c`.
:data:`DEFAULT_HESSIAN` was picked from measurements (``docs/gbdt.md``).

Soft binary labels :math:`t \in (0, 1)` use the general formula of the exact derivatives of
:math:`\alpha_t (1 - p_t)^\gamma\, \mathrm{BCE}` (the loss of :func:`focalkit.sigmoid_focal_loss`);
for them the positive choices use the same expressions with :math:`c` replaced by
:math:`-\log p_t`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from focalkit import _validation as V

__all__ = [
    "DEFAULT_HESSIAN",
    "HESSIANS",
    "binary_focal_grad_hess",
    "binary_focal_loss",
    "prior_init_score",
    "softmax_focal_grad_hess",
    "softmax_focal_hessian_matrix",
    "softmax_focal_loss",
]

#: The ``hessian=`` choices; all but ``"exact"`` are never negative.
HESSIANS = ("exact", "clipped", "gauss_newton", "fixed_weight")
#: The default ``hessian=``: see docs/gbdt.md for the measurements it was picked from.
DEFAULT_HESSIAN = "gauss_newton"


# ----------------------------------------------------------------------------------------- checks
def check_hessian(hessian: Any) -> str:
    if not isinstance(hessian, str) or hessian not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")
    return hessian


def _as_float_array(name: str, a: Any) -> np.ndarray:
    if isinstance(a, (str, bytes)) or a is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(a).__name__}")
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers") from None
    return arr


def _check_margin(margin: Any, ndim: int) -> np.ndarray:
    x = _as_float_array("margin", margin)
    if x.ndim != ndim:
        shape = "(N,)" if ndim == 1 else "(N, K)"
        raise ValueError(f"margin must have shape {shape}, got shape {x.shape}")
    if x.size and not np.isfinite(x).all():
        raise ValueError("margin must be finite (got NaN or infinity)")
    return x


def _check_binary_labels(y: Any, n: int) -> np.ndarray:
    t = _as_float_array("y", y).reshape(-1) if np.ndim(y) else _as_float_array("y", y)
    if t.shape != (n,):
        raise ValueError(f"y must have shape ({n},) like margin, got shape {np.shape(y)}")
    if t.size and not (np.isfinite(t).all() and t.min() >= 0.0 and t.max() <= 1.0):
        raise ValueError("y must hold labels in [0, 1] (0/1 or soft)")
    return t


def _check_class_labels(y: Any, n: int, k: int) -> np.ndarray:
    t = _as_float_array("y", y)
    if t.shape != (n,):
        raise ValueError(f"y must hold one class index per row of margin, shape ({n},), got shape {t.shape}")
    if t.size and not (np.isfinite(t).all() and np.all(t == np.round(t)) and t.min() >= 0 and t.max() <= k - 1):
        raise ValueError(f"y must hold integer class indices in [0, {k - 1}]")
    return t.astype(np.int64)


def check_binary_alpha(alpha: Any) -> float | None:
    return None if alpha is None else V.check_alpha_scalar(alpha)


def check_class_alpha(alpha: Any, k: int) -> np.ndarray | None:
    if alpha is None:
        return None
    if isinstance(alpha, numbers.Real):
        raise TypeError(
            f"alpha for the softmax focal loss must be None or {k} per-class weights, got the number "
            f"{alpha!r} (one scalar would only rescale the loss)"
        )
    a = _as_float_array("alpha", alpha)
    if a.shape != (k,):
        raise ValueError(f"alpha must have one weight per class, length K = {k}, got shape {a.shape}")
    if not (np.isfinite(a).all() and (a >= 0).all()):
        raise ValueError("alpha values must be finite and >= 0")
    return a


# ------------------------------------------------------------------------------------------ binary
def _binary_parts(x: np.ndarray, t: np.ndarray, gamma: float) -> dict[str, np.ndarray]:
    ls_pos = -np.logaddexp(0.0, -x)  # log p
    ls_neg = -np.logaddexp(0.0, x)  # log (1 - p)
    p, pm = np.exp(ls_pos), np.exp(ls_neg)  # p and 1 - p, each to full relative precision
    hard = (t == 0.0) | (t == 1.0)
    q = p * (1.0 - t) + pm * t  # 1 - p_t
    p_t = p * t + pm * (1.0 - t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # in np.where's unused branches
        log_q = np.where(hard, t * ls_neg + (1.0 - t) * ls_pos, np.log(q))
        log_pt = np.where(hard, t * ls_pos + (1.0 - t) * ls_neg, np.where(q < 0.5, np.log1p(-q), np.log(p_t)))
        qg = np.exp(gamma * log_q) if gamma != 0 else np.ones_like(x)
        ce = -(t * ls_pos + (1.0 - t) * ls_neg)
        v = p * pm  # d^2 ce / dx^2
        p_minus_t = p * (1.0 - t) - pm * t
        # r = (2t - 1) v / q, so that q^(gamma-1) d(p_t)/dx = q^gamma r (closed form for hard labels)
        r = np.where(hard, t * p - (1.0 - t) * pm, np.where(q > 0, (2.0 * t - 1.0) * v / q, 0.0))
        c_over_q = np.where(q > 0, -log_pt / q, 1.0)  # -> 1 as q -> 0
    return {"p": p, "pm": pm, "q": q, "p_t": p_t, "qg": qg, "ce": ce, "v": v, "pmt": p_minus_t,
            "r": r, "c_over_q": c_over_q}


def _binary_hessian(d: dict[str, np.ndarray], gamma: float, hessian: str) -> np.ndarray:
    qg, v = d["qg"], d["v"]
    if hessian == "fixed_weight":
        return qg * v
    gn = qg * (1.0 + gamma * d["p_t"] * d["c_over_q"]) * v
    if hessian == "gauss_newton":
        return gn
    r, ce = d["r"], d["ce"]
    exact = qg * ((gamma * (gamma - 1.0) * r * r - gamma * r * (d["pm"] - d["p"])) * ce
                  - 2.0 * gamma * r * d["pmt"] + v)
    return exact if hessian == "exact" else np.maximum(exact, gn)


def _binary_alpha_t(t: np.ndarray, alpha: float | None) -> np.ndarray | float:
    return 1.0 if alpha is None else alpha * t + (1.0 - alpha) * (1.0 - t)


def binary_focal_grad_hess(
    margin: Any, y: Any, *, gamma: float = 2.0, alpha: float | None = None, hessian: str = DEFAULT_HESSIAN,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradient and Hessian of the binary (sigmoid) focal loss with respect to the margin.

    The per-example loss is the one of :func:`focalkit.sigmoid_focal_loss` (``reduction="none"``)
    with ``p = sigmoid(margin)``::

        p_t = p * y + (1 - p) * (1 - y),   alpha_t = alpha * y + (1 - alpha) * (1 - y)  (1 if None)
        loss = -alpha_t * (1 - p_t) ** gamma * (y * log(p) + (1 - y) * log(1 - p))

    The gradient is exact; the Hessian is the choice ``hessian`` of :data:`HESSIANS` (see the
    module docstring for the formulas). At ``gamma=0`` both are those of the (alpha-weighted)
    logistic loss: ``alpha_t * (p - y)`` and ``alpha_t * p * (1 - p)``.

    Args:
        margin: (N,) raw scores (log-odds), finite.
        y: (N,) labels, 0/1 or soft in [0, 1].
        gamma: focusing parameter >= 0.
        alpha: weight of the positive class in [0, 1], or None (no weighting).
        hessian: ``"exact"``, ``"clipped"``, ``"gauss_newton"`` or ``"fixed_weight"``.

    Returns:
        ``(grad, hess)``, two float64 arrays of shape (N,).

    Example:
        >>> import numpy as np
        >>> g, h = binary_focal_grad_hess(np.array([0.0, 3.0]), np.array([1, 0]), gamma=0.0)
        >>> np.round(g, 4).tolist(), np.round(h, 4).tolist()  # p - y and p (1 - p)
        ([-0.5, 0.9526], [0.25, 0.0452])
        >>> h = binary_focal_grad_hess(np.array([-5.0]), np.array([1]), gamma=2.0, hessian="exact")[1]
        >>> bool(h[0] < 0)  # a badly misclassified example: negative curvature
        True
    """
    x = _check_margin(margin, 1)
    t = _check_binary_labels(y, x.shape[0])
    gamma = V.check_gamma(gamma)
    alpha = check_binary_alpha(alpha)
    hessian = check_hessian(hessian)
    d = _binary_parts(x, t, gamma)
    a_t = _binary_alpha_t(t, alpha)
    grad = a_t * d["qg"] * (d["pmt"] - gamma * d["r"] * d["ce"])
    hess = a_t * _binary_hessian(d, gamma, hessian)
    return np.asarray(grad, np.float64), np.asarray(hess, np.float64)


def binary_focal_loss(margin: Any, y: Any, *, gamma: float = 2.0, alpha: float | None = None) -> np.ndarray:
    """Per-example binary focal loss from the margin, float64 (N,); see :func:`binary_focal_grad_hess`.

    Example:
        >>> import numpy as np
        >>> round(float(binary_focal_loss(np.array([0.0]), np.array([1.0]), gamma=0.0)[0]), 6)  # log 2
        0.693147
    """
    x = _check_margin(margin, 1)
    t = _check_binary_labels(y, x.shape[0])
    gamma = V.check_gamma(gamma)
    alpha = check_binary_alpha(alpha)
    d = _binary_parts(x, t, gamma)
    return np.asarray(_binary_alpha_t(t, alpha) * d["qg"] * d["ce"], np.float64)


# ----------------------------------------------------------------------------------------- softmax
def _softmax_parts(x: np.ndarray, y: np.ndarray, gamma: float) -> dict[str, np.ndarray]:
    n, k = x.shape
    rows = np.arange(n)
    z = x - x.max(axis=1, keepdims=True)
    ez = np.exp(z)
    total = ez.sum(axis=1, keepdims=True)
    log_p = z - np.log(total)
    p = np.exp(log_p)
    # 1 - p_j without cancellation: for the largest class (the only one that can be near 1) as the
    # sum of the others' exp(z) over the total
    om = 1.0 - p
    top = np.argmax(x, axis=1)
    is_top = np.zeros_like(p, dtype=bool)
    is_top[rows, top] = True
    om[rows, top] = np.where(is_top, 0.0, ez).sum(axis=1) / total[:, 0]
    onehot = np.zeros_like(p, dtype=bool)
    onehot[rows, y] = True
    py = p[rows, y]
    q = np.where(onehot, 0.0, p).sum(axis=1)  # 1 - p_y as the sum of the other classes' probabilities
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # in np.where's unused branches
        log_py = np.where(q < 0.5, np.log1p(-q), log_p[rows, y])
        c = -log_py
        qg = np.exp(gamma * np.log(q)) if gamma != 0 else np.ones(n)
        c_over_q = np.where(q > 0, c / q, 1.0)
        # e = -grad(c) / q: 1 at the label, -p_j / q elsewhere (0 when q underflows to 0)
        e = np.where(onehot, 1.0, np.where(q[:, None] > 0, -p / q[:, None], 0.0))
    h1 = qg * (1.0 + gamma * py * c_over_q)  # h'(c)
    h1q = qg * (q + gamma * py * c)  # h'(c) q
    h2qq = gamma * py * qg * ((gamma - 1.0) * py * c + q * (2.0 - c))  # h''(c) q^2
    s_diag = np.where(onehot, (py * q)[:, None], p * om)  # diag(p) - p^2, with 1 - p_y = q
    return {"p": p, "q": q, "qg": qg, "c": c, "e": e, "h1": h1, "h1q": h1q, "h2qq": h2qq, "s_diag": s_diag}


def _class_alpha(y: np.ndarray, alpha: np.ndarray | None) -> np.ndarray | float:
    return 1.0 if alpha is None else alpha[y]


def _softmax_checked(margin: Any, y: Any, gamma: Any, alpha: Any) -> tuple[np.ndarray, np.ndarray, float, Any]:
    x = _check_margin(margin, 2)
    n, k = x.shape
    if k < 2:
        raise ValueError(f"margin must have K >= 2 class columns, got shape {x.shape}")
    return x, _check_class_labels(y, n, k), V.check_gamma(gamma), check_class_alpha(alpha, k)


def softmax_focal_grad_hess(
    margin: Any, y: Any, *, gamma: float = 2.0, alpha: Any = None, hessian: str = DEFAULT_HESSIAN,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradient and diagonal Hessian of the softmax (multi-class) focal loss w.r.t. the margins.

    The per-example loss is the one of :func:`focalkit.softmax_focal_loss` (``reduction="none"``)
    with ``p = softmax(margin)`` over the K columns and ``p_y`` the probability of the label::

        loss = -alpha[y] * (1 - p_y) ** gamma * log(p_y)

    The gradient is exact, ``alpha_y h'(c) (p - onehot(y))``; ``hess[:, j]`` is the diagonal entry
    ``d^2 loss / d margin_j^2`` of the Hessian choice ``hessian`` (module docstring). At
    ``gamma=0`` they are the softmax cross-entropy's ``p - onehot(y)`` and ``p (1 - p)`` (times
    ``alpha[y]``).

    Args:
        margin: (N, K) raw scores, K >= 2, finite.
        y: (N,) integer class indices in [0, K-1] (integral floats accepted, as engines pass them).
        gamma: focusing parameter >= 0.
        alpha: None or K non-negative per-class weights (``alpha[y]`` multiplies the loss).
        hessian: ``"exact"``, ``"clipped"``, ``"gauss_newton"`` or ``"fixed_weight"``.

    Returns:
        ``(grad, hess)``, two float64 arrays of shape (N, K).

    Example:
        >>> import numpy as np
        >>> g, h = softmax_focal_grad_hess(np.zeros((1, 2)), np.array([0]), gamma=0.0)
        >>> g.tolist(), h.tolist()
        ([[-0.5, 0.5]], [[0.25, 0.25]])
    """
    x, t, gamma, alpha = _softmax_checked(margin, y, gamma, alpha)
    hessian = check_hessian(hessian)
    d = _softmax_parts(x, t, gamma)
    a = np.reshape(_class_alpha(t, alpha), (-1, 1))
    grad = -a * d["h1q"][:, None] * d["e"]
    if hessian == "fixed_weight":
        hess = a * d["qg"][:, None] * d["s_diag"]
    else:
        gn = d["h1"][:, None] * d["s_diag"]
        if hessian == "gauss_newton":
            hess = a * gn
        else:
            exact = gn + d["h2qq"][:, None] * d["e"] ** 2
            hess = a * (exact if hessian == "exact" else np.maximum(exact, gn))
    return np.asarray(grad, np.float64), np.asarray(hess, np.float64)


def softmax_focal_hessian_matrix(
    margin: Any, y: Any, *, gamma: float = 2.0, alpha: Any = None, hessian: str = DEFAULT_HESSIAN,
) -> np.ndarray:
    r"""The full (N, K, K) Hessian of the softmax focal loss for each example (for CatBoost).

    ``alpha_y [h'(c) (diag(p) - p p^T) + h''(c) g g^T]`` with ``g = p - onehot(y)`` for
    ``"exact"``; ``"clipped"`` keeps the ``h''`` term only where it is positive,
    ``"gauss_newton"`` drops it, ``"fixed_weight"`` is ``alpha_y (1 - p_y)^gamma (diag(p) - p p^T)``.
    Every choice but ``"exact"`` is positive semi-definite; the diagonal is
    :func:`softmax_focal_grad_hess`'s ``hess``.

    Example:
        >>> import numpy as np
        >>> softmax_focal_hessian_matrix(np.zeros((1, 2)), np.array([1]), gamma=0.0).tolist()
        [[[0.25, -0.25], [-0.25, 0.25]]]
    """
    x, t, gamma, alpha = _softmax_checked(margin, y, gamma, alpha)
    return softmax_grad_and_matrix(x, t, gamma, alpha, check_hessian(hessian))[1]


def softmax_grad_and_matrix(x: np.ndarray, y: np.ndarray, gamma: float, alpha: np.ndarray | None, hessian: str
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Gradient (N, K) and full Hessian (N, K, K) of checked input (no argument checks: internal)."""
    d = _softmax_parts(x, y, gamma)
    p = d["p"]
    s = -p[:, :, None] * p[:, None, :]
    idx = np.arange(x.shape[1])
    s[:, idx, idx] = d["s_diag"]
    if hessian == "fixed_weight":
        coef, rank1 = d["qg"], None
    else:
        coef = d["h1"]
        rank1 = {"exact": d["h2qq"], "clipped": np.maximum(d["h2qq"], 0.0), "gauss_newton": None}[hessian]
    h = coef[:, None, None] * s
    if rank1 is not None:
        e = d["e"]
        h = h + rank1[:, None, None] * (e[:, :, None] * e[:, None, :])  # exactly symmetric
    a = np.reshape(_class_alpha(y, alpha), (-1, 1))
    grad = -a * d["h1q"][:, None] * d["e"]
    return grad, a[:, :, None] * h


def softmax_focal_loss(margin: Any, y: Any, *, gamma: float = 2.0, alpha: Any = None) -> np.ndarray:
    """Per-example softmax focal loss from the margins, float64 (N,); see :func:`softmax_focal_grad_hess`.

    Example:
        >>> import numpy as np
        >>> round(float(softmax_focal_loss(np.zeros((1, 4)), np.array([2]), gamma=0.0)[0]), 6)  # log 4
        1.386294
    """
    x, t, gamma, alpha = _softmax_checked(margin, y, gamma, alpha)
    d = _softmax_parts(x, t, gamma)
    return np.asarray(_class_alpha(t, alpha) * d["qg"] * d["c"], np.float64)


# -------------------------------------------------------------------------------------- init score
def prior_init_score(y: Any, num_class: int | None = None, sample_weight: Any = None) -> np.ndarray:
    r"""Initial margin from the class prior: the boosting analogue of :func:`focalkit.prior_bias`.

    Binary (``num_class`` None or 2): the log-odds of the (weighted) positive rate
    :math:`\log(\pi / (1 - \pi))`, shape (1,). Multi-class: the log class priors
    :math:`\log \pi_k`, shape (K,). This is where LightGBM's and XGBoost's own logloss / softmax
    objectives start (``boost_from_average``); a custom objective gets no such start, so the engine
    adapters pass it as the init score / base margin and add it back at prediction time.

    Args:
        y: (N,) labels: 0/1 (binary) or class indices in [0, K-1].
        num_class: K for multi-class, None or 2 for binary.
        sample_weight: (N,) non-negative weights, or None.

    Example:
        >>> prior_init_score([0, 0, 0, 1]).round(4).tolist()  # log(1/3)
        [-1.0986]
        >>> prior_init_score([0, 1, 1, 2], num_class=3).round(4).tolist()
        [-1.3863, -0.6931, -1.3863]
    """
    k = 2 if num_class is None else V.check_count("num_class", num_class)
    if k < 2:
        raise ValueError(f"num_class must be >= 2, got {k}")
    t = _as_float_array("y", y).reshape(-1)
    w = np.ones_like(t) if sample_weight is None else _as_float_array("sample_weight", sample_weight).reshape(-1)
    if w.shape != t.shape:
        raise ValueError(f"sample_weight must have shape {t.shape} like y, got {w.shape}")
    if not (np.isfinite(w).all() and (w >= 0).all()) or w.sum() <= 0:
        raise ValueError("sample_weight must be finite, >= 0 and not all 0")
    if t.size == 0:
        raise ValueError("y must not be empty")
    if k == 2:
        t = _check_binary_labels(t, t.shape[0])
        pi = float((w * t).sum() / w.sum())
        if not 0.0 < pi < 1.0:
            raise ValueError(f"y must hold both classes to set a prior (positive rate {pi})")
        return np.array([np.log(pi) - np.log1p(-pi)])
    labels = _check_class_labels(t, t.shape[0], k)
    counts = np.bincount(labels, weights=w, minlength=k)
    if (counts <= 0).any():
        raise ValueError(f"every class must occur (with weight > 0) to set a prior, class counts {counts.tolist()}")
    return np.log(counts / counts.sum())
