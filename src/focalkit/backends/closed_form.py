"""The eager closed form: loss and analytic gradient in one pass of composed torch ops.

This is the portable implementation of the kernel contract (see ``focalkit.backends``): it runs
on any device and dtype, computes in float32 (float64 for float64 input), and returns the summed or
per-element loss, the number of non-ignored elements (sigmoid) or positions (softmax), and
d(sum of loss)/d(logits). It also handles what the fused kernels leave out (``weight``, tensor
``alpha`` for the sigmoid loss, class-probability targets for the softmax loss).

Sigmoid, per element, with p = sigmoid(x), q = 1 - p_t = p (1 - t) + (1 - p) t and
ce = -(t logsigmoid(x) + (1 - t) logsigmoid(-x)) (exact for confident predictions, where
``binary_cross_entropy_with_logits`` rounds log(1 + e^-|x|) to 0), the focal kind with the Poly-1
term (g = gamma, or a :class:`~focalkit.PiecewiseGamma` at p_t, a constant for the gradient)::

    loss    = alpha_t q^g ce + epsilon q^(g+1)
    dloss/dx = alpha_t q^g [ (p - t) + g (p (1 - p) / q) (1 - 2 t) ce ] + epsilon (g + 1) q^g p (1 - p) (1 - 2 t)

The ratio p (1 - p) / q lies in [0, 1] (q is a convex combination of p and 1 - p) and is taken as 0
where q = 0, so gamma < 1 at p_t = 1 gives 0, not 0 * inf. The other kinds of the sigmoid pass
(asymmetric, quality, varifocal) are in :mod:`focalkit.backends.closed_form_family`.

Softmax, per position, with log p = log_softmax(x), om_c = 1 - p_c = -expm1(log p_c),
w_c = alpha_c t_c, g_c = gamma (or PiecewiseGamma at p_c), p_t = sum_c t_c p_c,
u = 1 - p_t = sum_c t_c om_c + (1 - sum_c t_c) and g_t = gamma (or PiecewiseGamma at p_t)::

    loss      = -sum_c w_c om_c^g_c log p_c + epsilon u^(g_t + 1)
    h_c       = om_c^g_c (g_c p_c log p_c / om_c - 1)        (log p_c / om_c := -1 at om_c = 0)
    dloss/dx_j = w_j h_j - p_j sum_c w_c h_c + epsilon (g_t + 1) u^g_t p_j (p_t - t_j)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from focalkit.backends import closed_form_family
from focalkit.backends.registry import Variant
from focalkit.gamma import PiecewiseGamma


def compute_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _grad_dtype(g: Tensor, x: Tensor) -> Tensor:
    """The saved gradient's dtype: x's, but float32 for float16 x (see the kernel contract)."""
    return g if x.dtype == torch.float16 else g.to(x.dtype)


def class_view(v: Tensor, ndim: int) -> Tensor:
    """Reshape a (C,) vector to broadcast along dimension 1 of an ndim-dimensional tensor."""
    return v.reshape((1, -1) + (1,) * (ndim - 2)) if ndim >= 2 else v


def sigmoid_dense_targets(
    x: Tensor, targets: Tensor, labels: bool, ignore_index: int | None, dtype: torch.dtype,
    scores: Tensor | None = None,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Targets as a float tensor of the logits' shape, the validity mask (or None) and the count.

    With class indices, ``scores`` (the targets' shape) is the target value of each position's
    labelled class (1 when None); every other class gets 0.
    """
    if labels:
        c = x.shape[1]
        y = targets.long()
        valid_pos = None if ignore_index is None else targets != ignore_index
        if valid_pos is not None:
            y = torch.where(valid_pos, y, c)
        t = F.one_hot(y, c + 1)[..., :c].movedim(-1, 1).to(dtype)
        if scores is not None:
            t = t * scores.to(dtype).unsqueeze(1)
        if valid_pos is None:
            return t, None, torch.tensor(x.numel(), device=x.device)
        valid = valid_pos.unsqueeze(1).expand(x.shape)
        return t, valid, valid_pos.sum() * c
    if ignore_index is None:
        return targets.to(dtype), None, torch.tensor(x.numel(), device=x.device)
    valid = targets != ignore_index
    t = torch.where(valid, targets.to(dtype), torch.zeros((), dtype=dtype, device=x.device))
    return t, valid, valid.sum()


def sigmoid_uniform_smoothed_targets(
    x: Tensor, targets: Tensor, labels: bool, ignore_index: int | None, label_smoothing: float
) -> tuple[Tensor, int | None]:
    """Targets of the logits' shape smoothed toward 1/C (C = x.shape[1]): t (1 - ls) + ls / C.

    This is timm's ``BinaryCrossEntropy(smoothing=ls)`` convention (the default smooths toward 1/2).
    Returns the float targets (their autograd graph kept) and the ignore_index that now marks the
    ignored elements: -1, outside the smoothed values' range [0, 1], or None when nothing is ignored.
    """
    t, valid, _ = sigmoid_dense_targets(x, targets, labels, ignore_index, compute_dtype(x))
    t = t * (1.0 - label_smoothing) + label_smoothing / x.shape[1]
    return (t, None) if valid is None else (torch.where(valid, t, -1.0), -1)


def sigmoid_focal_fwd(
    x: Tensor,
    targets: Tensor,
    *,
    labels: bool,
    alpha: float | Tensor | None,
    gamma: float | PiecewiseGamma,
    ignore_index: int | None,
    label_smoothing: float,
    reduce: bool,
    compute_grad: bool,
    weight: Tensor | None = None,
    variant: Variant | None = None,
    scores: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Eager closed form of the shared sigmoid pass (kernel contract of ``focalkit.backends``).

    ``variant`` picks the member of the family (None: the plain focal loss); ``scores`` are the
    per-position target scores that go with class-index targets (quality / varifocal kinds).
    """
    dt = compute_dtype(x)
    t, valid, count = sigmoid_dense_targets(x, targets, labels, ignore_index, dt, scores)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing
    xf = x.to(dt)
    p = torch.sigmoid(xf)
    p_neg = torch.sigmoid(-xf)  # 1 - p without cancellation
    ls_p, ls_n = F.logsigmoid(xf), F.logsigmoid(-xf)  # log p, log(1 - p), exact in the tails
    ce = -(t * ls_p + (1.0 - t) * ls_n)

    kind = "focal" if variant is None else variant.kind
    epsilon = 0.0 if variant is None else variant.epsilon
    fold_alpha = kind == "focal" and not epsilon  # alpha_t then multiplies the whole loss
    scale = None  # (alpha_t *) weight * valid, per element
    if alpha is not None and fold_alpha:
        scale = alpha_t(alpha, t, x.device, dt)
    if weight is not None:
        w = weight.to(device=x.device, dtype=dt)
        scale = w if scale is None else scale * w
    if valid is not None:
        scale = valid.to(dt) if scale is None else torch.where(valid, scale, 0.0)
    if scale is not None:
        scale = scale.expand(x.shape)

    if kind == "focal":
        a = None if fold_alpha or alpha is None else alpha_t(alpha, t, x.device, dt)
        loss, g = _focal_terms(p, p_neg, t, ce, a, gamma, epsilon, compute_grad)
    else:
        assert variant is not None
        loss, g = closed_form_family.family_terms(variant, p, p_neg, ls_p, ls_n, t, ce, alpha, gamma, compute_grad)
    if scale is not None:
        loss = loss * scale
    grad = None
    if compute_grad:
        assert g is not None
        if scale is not None:
            g = g * scale
        grad = _grad_dtype(g, x)
    return (loss.sum() if reduce else loss), count, grad


def alpha_t(alpha: float | Tensor, t: Tensor, device: torch.device, dt: torch.dtype) -> Tensor:
    """alpha t + (1 - alpha)(1 - t)."""
    a = alpha.to(device=device, dtype=dt) if isinstance(alpha, Tensor) else alpha
    return a * t + (1.0 - a) * (1.0 - t)


def _focal_terms(
    p: Tensor, p_neg: Tensor, t: Tensor, ce: Tensor, a: Tensor | None, gamma: float | PiecewiseGamma,
    epsilon: float, compute_grad: bool,
) -> tuple[Tensor, Tensor | None]:
    """a q^g ce + epsilon q^(g+1) and its derivative in x (q = 1 - p_t; a: alpha_t or None)."""
    q = p * (1.0 - t) + p_neg * t  # 1 - p_t
    g: float | Tensor = gamma(1.0 - q) if isinstance(gamma, PiecewiseGamma) else gamma
    mod = q.pow(g) if not is_zero(g) else None
    loss = ce if mod is None else ce * mod
    if a is not None:
        loss = loss * a
    if epsilon:
        loss = loss + epsilon * (q if mod is None else q * mod)
    if not compute_grad:
        return loss, None
    grad = p - t
    if mod is not None:
        ratio = torch.where(q > 0, p * p_neg / q, 0.0)
        grad = (grad + g * ratio * (1.0 - 2.0 * t) * ce) * mod
    if a is not None:
        grad = grad * a
    if epsilon:
        dq = p * p_neg * (1.0 - 2.0 * t)  # d(1 - p_t)/dx
        grad = grad + (epsilon * (g + 1.0)) * (dq if mod is None else dq * mod)
    return loss, grad


def is_zero(g: float | Tensor) -> bool:
    """A float gamma equal to 0 (a per-element gamma tensor never counts as 0)."""
    return not isinstance(g, Tensor) and g == 0


def softmax_focal_fwd(
    x: Tensor,
    targets: Tensor,
    *,
    alpha: Tensor | None,
    gamma: float | PiecewiseGamma,
    ignore_index: int,
    label_smoothing: float,
    reduce: bool,
    compute_grad: bool,
    weight: Tensor | None = None,
    variant: Variant | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Eager closed form of the softmax pass (kernel contract of ``focalkit.backends``).

    Besides class indices it accepts class-probability targets of the logits' shape. ``variant``
    carries the Poly-1 ``epsilon`` (the softmax pass has the focal kind only).
    """
    dt = compute_dtype(x)
    c = x.shape[1]
    logp = torch.log_softmax(x.to(dt), dim=1)
    zero = torch.zeros((), dtype=dt, device=x.device)
    a = None if alpha is None else class_view(alpha.to(device=x.device, dtype=dt), x.dim())
    eps = 0.0 if variant is None else variant.epsilon
    piecewise = isinstance(gamma, PiecewiseGamma)

    soft = targets.is_floating_point()
    if soft:
        valid = None
        count = torch.tensor(targets.numel() // max(c, 1), device=x.device)
    else:
        valid = targets != ignore_index
        count = valid.sum()
        y = torch.where(valid, targets, 0).long().unsqueeze(1)

    pos_scale = None  # weight * valid, per position
    if weight is not None:
        pos_scale = weight.to(device=x.device, dtype=dt).expand(logp.shape[:1] + logp.shape[2:])
    if valid is not None:
        pos_scale = valid.to(dt) if pos_scale is None else torch.where(valid, pos_scale, zero)

    if not soft and not label_smoothing:
        # Hard labels: only the target class enters the loss (and p_t = p_y).
        logp_y = logp.gather(1, y).squeeze(1)
        om = -torch.expm1(logp_y)
        g = gamma(torch.exp(logp_y)) if piecewise else gamma
        mod = om.pow(g) if not is_zero(g) else torch.ones_like(om)
        w = pos_scale if a is None else a.expand(x.shape).gather(1, y).squeeze(1) * (
            1.0 if pos_scale is None else pos_scale
        )
        loss = -mod * logp_y
        if w is not None:
            loss = loss * w
        if eps:
            poly = eps * om * mod
            loss = loss + (poly if pos_scale is None else poly * pos_scale)
        grad = None
        if compute_grad:
            h = -mod
            if not is_zero(g):
                ratio = torch.where(om > 0, logp_y / om, -torch.ones((), dtype=dt, device=x.device))
                h = mod * (g * torch.exp(logp_y) * ratio - 1.0)
            coef = h if w is None else h * w
            if eps:  # d(eps om^(g+1))/dx_j = -eps (g+1) om^g p_y (onehot_j - p_j)
                dpoly = (eps * (g + 1.0)) * mod * torch.exp(logp_y)
                coef = coef - (dpoly if pos_scale is None else dpoly * pos_scale)
            coef = coef.unsqueeze(1)
            g_x = logp.exp_().mul_(-coef)  # -p_j * coef (logp is not needed any more)
            g_x.scatter_add_(1, y, coef)
            grad = _grad_dtype(g_x, x)
        return (loss.sum() if reduce else loss), count, grad

    # Full distribution: class probabilities or label smoothing.
    if soft:
        t = targets.to(dt)
    else:
        t = F.one_hot(y.squeeze(1), c).movedim(-1, 1).to(dt)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + label_smoothing / c
    w = t if a is None else a * t
    p = torch.exp(logp)
    om = -torch.expm1(logp)
    g = gamma(p) if piecewise else gamma
    mod = om.pow(g) if not is_zero(g) else torch.ones_like(om)
    terms = torch.where(w > 0, w * mod * logp, zero)  # 0 * log(0) := 0
    loss = -terms.sum(1)
    if eps:
        u, g_t, mod_t = _poly_softmax_parts(t, p, om, gamma)
        loss = loss + eps * u * mod_t
    if pos_scale is not None:
        loss = loss * pos_scale
    grad = None
    if compute_grad:
        h = -mod
        if not is_zero(g):
            ratio = torch.where(om > 0, logp / om, -torch.ones((), dtype=dt, device=x.device))
            h = mod * (g * p * ratio - 1.0)
        wh = torch.where(w > 0, w * h, zero)
        g_x = wh - p * wh.sum(1, keepdim=True)
        if eps:
            p_t = (t * p).sum(1, keepdim=True)
            g_x = g_x + (eps * (g_t + 1.0) * mod_t).unsqueeze(1) * p * (p_t - t)
        if pos_scale is not None:
            g_x = g_x * pos_scale.unsqueeze(1)
        grad = _grad_dtype(g_x, x)
    return (loss.sum() if reduce else loss), count, grad


def _poly_softmax_parts(
    t: Tensor, p: Tensor, om: Tensor, gamma: float | PiecewiseGamma
) -> tuple[Tensor, float | Tensor, Tensor]:
    """u = 1 - p_t = sum_c t_c (1 - p_c) + (1 - sum_c t_c) (no cancellation for one-hot t), g_t, u^g_t.

    g_t is the PiecewiseGamma at p_t = sum_c t_c p_c.
    """
    u = ((t * om).sum(1) + (1.0 - t.sum(1))).clamp_min(0.0)
    g_t: float | Tensor = gamma((t * p).sum(1)) if isinstance(gamma, PiecewiseGamma) else gamma
    mod_t = u.pow(g_t) if not is_zero(g_t) else torch.ones_like(u)
    return u, g_t, mod_t
