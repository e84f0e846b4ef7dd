"""The eager closed form: loss and analytic gradient in one pass of composed torch ops.

This is the portable implementation of the kernel contract (see ``focalkit.backends``): it runs
on any device and dtype, computes in float32 (float64 for float64 input), and returns the summed or
per-element loss, the number of non-ignored elements (sigmoid) or positions (softmax), and
d(sum of loss)/d(logits). It also handles what the fused kernels leave out (``weight``, tensor
``alpha`` for the sigmoid loss, class-probability targets for the softmax loss).

Sigmoid, per element, with p = sigmoid(x), q = 1 - p_t = p (1 - t) + (1 - p) t and
ce = BCE-with-logits(x, t)::

    loss    = alpha_t q^gamma ce
    dloss/dx = alpha_t q^gamma [ (p - t) + gamma (p (1 - p) / q) (1 - 2 t) ce ]

The ratio p (1 - p) / q lies in [0, 1] (q is a convex combination of p and 1 - p) and is taken as 0
where q = 0, so gamma < 1 at p_t = 1 gives 0, not 0 * inf.

Softmax, per position, with log p = log_softmax(x), om_c = 1 - p_c = -expm1(log p_c),
w_c = alpha_c t_c::

    loss      = -sum_c w_c om_c^gamma log p_c
    h_c       = om_c^gamma (gamma p_c log p_c / om_c - 1)        (log p_c / om_c := -1 at om_c = 0)
    dloss/dx_j = w_j h_j - p_j sum_c w_c h_c
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def compute_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _grad_dtype(g: Tensor, x: Tensor) -> Tensor:
    """The saved gradient's dtype: x's, but float32 for float16 x (see the kernel contract)."""
    return g if x.dtype == torch.float16 else g.to(x.dtype)


def class_view(v: Tensor, ndim: int) -> Tensor:
    """Reshape a (C,) vector to broadcast along dimension 1 of an ndim-dimensional tensor."""
    return v.reshape((1, -1) + (1,) * (ndim - 2)) if ndim >= 2 else v


def sigmoid_dense_targets(
    x: Tensor, targets: Tensor, labels: bool, ignore_index: int | None, dtype: torch.dtype
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Targets as a float tensor of the logits' shape, the validity mask (or None) and the count."""
    if labels:
        c = x.shape[1]
        y = targets.long()
        valid_pos = None if ignore_index is None else targets != ignore_index
        if valid_pos is not None:
            y = torch.where(valid_pos, y, c)
        t = F.one_hot(y, c + 1)[..., :c].movedim(-1, 1).to(dtype)
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
    gamma: float,
    ignore_index: int | None,
    label_smoothing: float,
    reduce: bool,
    compute_grad: bool,
    weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Eager closed form of the sigmoid focal loss (kernel contract of ``focalkit.backends``)."""
    dt = compute_dtype(x)
    t, valid, count = sigmoid_dense_targets(x, targets, labels, ignore_index, dt)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing
    xf = x.to(dt)
    p = torch.sigmoid(xf)
    p_neg = torch.sigmoid(-xf)  # 1 - p without cancellation
    q = p * (1.0 - t) + p_neg * t  # 1 - p_t
    ce = F.binary_cross_entropy_with_logits(xf, t, reduction="none")

    scale = None  # alpha_t * weight * valid, per element
    if alpha is not None:
        a = alpha.to(device=x.device, dtype=dt) if isinstance(alpha, Tensor) else alpha
        scale = a * t + (1.0 - a) * (1.0 - t)
    if weight is not None:
        w = weight.to(device=x.device, dtype=dt)
        scale = w if scale is None else scale * w
    if valid is not None:
        scale = valid.to(dt) if scale is None else torch.where(valid, scale, 0.0)
    if scale is not None:
        scale = scale.expand(x.shape)

    mod = q.pow(gamma) if gamma != 0 else None
    loss = ce if mod is None else ce * mod
    if scale is not None:
        loss = loss * scale

    grad = None
    if compute_grad:
        g = p - t
        if gamma != 0:
            ratio = torch.where(q > 0, p * p_neg / q, torch.zeros((), dtype=dt, device=x.device))
            g = (g + gamma * ratio * (1.0 - 2.0 * t) * ce) * mod
        if scale is not None:
            g = g * scale
        grad = _grad_dtype(g, x)
    return (loss.sum() if reduce else loss), count, grad


def softmax_focal_fwd(
    x: Tensor,
    targets: Tensor,
    *,
    alpha: Tensor | None,
    gamma: float,
    ignore_index: int,
    label_smoothing: float,
    reduce: bool,
    compute_grad: bool,
    weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Eager closed form of the softmax focal loss (kernel contract of ``focalkit.backends``).

    Besides class indices it accepts class-probability targets of the logits' shape.
    """
    dt = compute_dtype(x)
    c = x.shape[1]
    logp = torch.log_softmax(x.to(dt), dim=1)
    zero = torch.zeros((), dtype=dt, device=x.device)
    a = None if alpha is None else class_view(alpha.to(device=x.device, dtype=dt), x.dim())

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
        # Hard labels: only the target class enters the loss.
        logp_y = logp.gather(1, y).squeeze(1)
        om = -torch.expm1(logp_y)
        mod = om.pow(gamma) if gamma != 0 else torch.ones_like(om)
        w = pos_scale if a is None else a.expand(x.shape).gather(1, y).squeeze(1) * (
            1.0 if pos_scale is None else pos_scale
        )
        loss = -mod * logp_y
        if w is not None:
            loss = loss * w
        grad = None
        if compute_grad:
            h = -mod
            if gamma != 0:
                ratio = torch.where(om > 0, logp_y / om, -torch.ones((), dtype=dt, device=x.device))
                h = mod * (gamma * torch.exp(logp_y) * ratio - 1.0)
            coef = (h if w is None else h * w).unsqueeze(1)
            g = logp.exp_().mul_(-coef)  # -p_j * w h_y (logp is not needed any more)
            g.scatter_add_(1, y, coef)
            grad = _grad_dtype(g, x)
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
    mod = om.pow(gamma) if gamma != 0 else torch.ones_like(om)
    terms = torch.where(w > 0, w * mod * logp, zero)  # 0 * log(0) := 0
    loss = -terms.sum(1)
    if pos_scale is not None:
        loss = loss * pos_scale
    grad = None
    if compute_grad:
        h = -mod
        if gamma != 0:
            ratio = torch.where(om > 0, logp / om, -torch.ones((), dtype=dt, device=x.device))
            h = mod * (gamma * p * ratio - 1.0)
        wh = torch.where(w > 0, w * h, zero)
        g = wh - p * wh.sum(1, keepdim=True)
        if pos_scale is not None:
            g = g * pos_scale.unsqueeze(1)
        grad = _grad_dtype(g, x)
    return (loss.sum() if reduce else loss), count, grad
