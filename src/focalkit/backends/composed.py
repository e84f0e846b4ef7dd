"""The composed path: the focal loss as plain differentiable torch ops, gradients by autograd.

It is the ``"reference"`` backend and the path taken whenever ``alpha``, ``weight`` or soft
``targets`` require gradients (or a second derivative is wanted). The modulating factor is built in
log space so that autograd never forms 0 * inf:

* sigmoid: log(1 - p_t) = logaddexp(log p + log(1 - t), log(1 - p) + log t), with log p and
  log(1 - p) from ``logsigmoid`` (for hard targets just log-sigmoid of -+x, which keeps the second
  derivative finite); (1 - p_t)^gamma = exp(gamma * log(1 - p_t)).
* softmax: (1 - p_c)^gamma with 1 - p_c = -expm1(log p_c), and a double ``where`` that sets the
  factor (and its gradient) to 0 below the smallest normal float, where its contribution to the
  loss and to the gradient is far below float resolution.

Both return the per-element (sigmoid) or per-position (softmax) loss, ignored entries 0, and the
number of non-ignored elements or positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from focalkit.backends.closed_form import class_view, compute_dtype, sigmoid_dense_targets


def sigmoid_focal_elementwise(
    x: Tensor,
    targets: Tensor,
    *,
    labels: bool,
    alpha: float | Tensor | None,
    gamma: float,
    ignore_index: int | None,
    label_smoothing: float,
    weight: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    dt = compute_dtype(x)
    if labels or ignore_index is not None or not targets.is_floating_point():
        t, valid, count = sigmoid_dense_targets(x, targets, labels, ignore_index, dt)
    else:  # keep the autograd graph of soft targets
        t, valid, count = targets.to(dt), None, torch.tensor(x.numel(), device=x.device)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing
    xf = x.to(dt)
    loss = F.binary_cross_entropy_with_logits(xf, t, reduction="none")
    if gamma != 0:
        loss = loss * torch.exp(gamma * _log_one_minus_pt(xf, t))
    if alpha is not None:
        a = alpha.to(device=x.device, dtype=dt) if isinstance(alpha, Tensor) else alpha
        loss = loss * (a * t + (1.0 - a) * (1.0 - t))
    if weight is not None:
        loss = loss * weight.to(device=x.device, dtype=dt)
    if valid is not None:
        loss = torch.where(valid, loss, torch.zeros((), dtype=dt, device=x.device))
    return loss, count


def _log_one_minus_pt(x: Tensor, t: Tensor) -> Tensor:
    """log(1 - p_t) = log(p (1 - t) + (1 - p) t), finite and twice differentiable.

    For hard targets it is log-sigmoid of +-x; for soft ones a logaddexp of two finite terms. The
    soft branch is evaluated on 0.5 where t is 0 or 1, because logaddexp with a -inf argument has
    a NaN second derivative (and ``where`` passes a NaN gradient of the unused branch through).
    When t itself requires grad the plain logaddexp form is kept, which is exact to first order.
    """
    ls_pos, ls_neg = F.logsigmoid(x), F.logsigmoid(-x)
    if t.requires_grad:
        return torch.logaddexp(ls_pos + torch.log1p(-t), ls_neg + torch.log(t))
    one, zero = t == 1, t == 0
    t_soft = torch.where(one | zero, torch.full_like(t, 0.5), t)
    soft = torch.logaddexp(ls_pos + torch.log1p(-t_soft), ls_neg + torch.log(t_soft))
    return torch.where(one, ls_neg, torch.where(zero, ls_pos, soft))


def _one_minus_p_pow(logp: Tensor, gamma: float) -> Tensor:
    if gamma == 0:
        return torch.ones_like(logp)
    om = -torch.expm1(logp)
    # Below the floor the factor (and its derivatives) are set to 0: the term's contribution is
    # below the dtype's resolution. float64 uses tiny ** 0.25 (~1e-77) so that second derivatives,
    # which divide by om twice, stay finite.
    tiny = torch.finfo(logp.dtype).tiny
    keep = om > (tiny**0.25 if logp.dtype == torch.float64 else tiny)
    om_safe = torch.where(keep, om, torch.ones_like(om))
    return torch.where(keep, torch.exp(gamma * torch.log(om_safe)), torch.zeros_like(om))


def softmax_focal_elementwise(
    x: Tensor,
    targets: Tensor,
    *,
    alpha: Tensor | None,
    gamma: float,
    ignore_index: int,
    label_smoothing: float,
    weight: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    dt = compute_dtype(x)
    c = x.shape[1]
    logp = torch.log_softmax(x.to(dt), dim=1)
    zero = torch.zeros((), dtype=dt, device=x.device)
    a = None if alpha is None else class_view(alpha.to(device=x.device, dtype=dt), x.dim())
    if targets.is_floating_point():
        t, valid = targets.to(dt), None
        count = torch.tensor(targets.numel() // max(c, 1), device=x.device)
    else:
        valid = targets != ignore_index
        count = valid.sum()
        y = torch.where(valid, targets, 0).long()
        t = F.one_hot(y, c).movedim(-1, 1).to(dt)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + label_smoothing / c
    w = t if a is None else a * t
    terms = w * _one_minus_p_pow(logp, gamma) * logp
    loss = -torch.where(w != 0, terms, zero).sum(1)
    if weight is not None:
        loss = loss * weight.to(device=x.device, dtype=dt)
    if valid is not None:
        loss = torch.where(valid, loss, zero)
    return loss, count
