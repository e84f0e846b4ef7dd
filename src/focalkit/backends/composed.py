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

from focalkit.backends.closed_form import class_view, compute_dtype, is_zero, sigmoid_dense_targets
from focalkit.backends.registry import Variant
from focalkit.gamma import PiecewiseGamma


def sigmoid_focal_elementwise(
    x: Tensor,
    targets: Tensor,
    *,
    labels: bool,
    alpha: float | Tensor | None,
    gamma: float | PiecewiseGamma,
    ignore_index: int | None,
    label_smoothing: float,
    weight: Tensor | None = None,
    variant: Variant | None = None,
    scores: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    dt = compute_dtype(x)
    if labels or ignore_index is not None or not targets.is_floating_point():
        t, valid, count = sigmoid_dense_targets(x, targets, labels, ignore_index, dt, scores)
    else:  # keep the autograd graph of soft targets
        t, valid, count = targets.to(dt), None, torch.tensor(x.numel(), device=x.device)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing
    xf = x.to(dt)
    ls_p, ls_n = F.logsigmoid(xf), F.logsigmoid(-xf)
    # exact for confident predictions (BCE-with-logits rounds log(1 + e^-|x|) to 0 there) and
    # twice differentiable: d2/dx2 logsigmoid(x) = -p (1 - p)
    ce = -(t * ls_p + (1.0 - t) * ls_n)
    kind = "focal" if variant is None else variant.kind
    if kind == "focal":
        loss = ce
        g: float | Tensor = gamma
        if isinstance(gamma, PiecewiseGamma):
            with torch.no_grad():  # gamma is piecewise constant in p_t: no gradient through it
                g = gamma(1.0 - (torch.sigmoid(xf) * (1.0 - t) + torch.sigmoid(-xf) * t))
        log_q = _log_one_minus_pt(xf, t) if not is_zero(g) or (variant is not None and variant.epsilon) else None
        if not is_zero(g):
            assert log_q is not None
            loss = loss * torch.exp(g * log_q)
        if alpha is not None:
            a = alpha.to(device=x.device, dtype=dt) if isinstance(alpha, Tensor) else alpha
            loss = loss * (a * t + (1.0 - a) * (1.0 - t))
        if variant is not None and variant.epsilon:
            assert log_q is not None
            loss = loss + variant.epsilon * torch.exp((g + 1.0) * log_q)
    else:
        assert variant is not None
        loss = family_elementwise(variant, xf, ls_p, ls_n, t, ce, alpha, gamma)
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


def _safe_pow(base: Tensor, exponent: float | Tensor) -> Tensor:
    """base ** exponent for base in [0, 1], twice differentiable (0 below a floor, see below)."""
    # Below the floor the factor (and its derivatives) are set to 0: the term's contribution is
    # below the dtype's resolution. float64 uses tiny ** 0.25 (~1e-77) so that second derivatives,
    # which divide by the base twice, stay finite.
    tiny = torch.finfo(base.dtype).tiny
    keep = base > (tiny**0.25 if base.dtype == torch.float64 else tiny)
    safe = torch.where(keep, base, torch.ones_like(base))
    return torch.where(keep, torch.exp(exponent * torch.log(safe)), torch.zeros_like(base))


def _one_minus_p_pow(logp: Tensor, gamma: float | Tensor) -> Tensor:
    if is_zero(gamma):
        return torch.ones_like(logp)
    return _safe_pow(-torch.expm1(logp), gamma)


def softmax_focal_elementwise(
    x: Tensor,
    targets: Tensor,
    *,
    alpha: Tensor | None,
    gamma: float | PiecewiseGamma,
    ignore_index: int,
    label_smoothing: float,
    weight: Tensor | None = None,
    variant: Variant | None = None,
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
    piecewise = isinstance(gamma, PiecewiseGamma)
    with torch.no_grad():  # a PiecewiseGamma is constant for the gradient
        p = torch.exp(logp) if piecewise else None
        g = gamma(p) if piecewise else gamma
    terms = w * _one_minus_p_pow(logp, g) * logp
    loss = -torch.where(w != 0, terms, zero).sum(1)
    if variant is not None and variant.epsilon:
        om = -torch.expm1(logp)
        u = ((t * om).sum(1) + (1.0 - t.sum(1))).clamp_min(0.0)  # 1 - p_t, p_t = sum_c t_c p_c
        with torch.no_grad():
            g_t = gamma((t * p).sum(1)) if piecewise else gamma
        loss = loss + variant.epsilon * _safe_pow(u, g_t + 1.0)
    if weight is not None:
        loss = loss * weight.to(device=x.device, dtype=dt)
    if valid is not None:
        loss = torch.where(valid, loss, zero)
    return loss, count


def family_elementwise(
    variant: Variant, x: Tensor, ls_p: Tensor, ls_n: Tensor, t: Tensor, ce: Tensor,
    alpha: float | Tensor | None, gamma: float,
) -> Tensor:
    """The asymmetric / quality / varifocal per-element loss as differentiable torch ops.

    The formulas of :mod:`focalkit.backends.closed_form_family`; powers of probabilities are taken
    in log space (exp(gamma log p) with log p = logsigmoid(x)) or through :func:`_safe_pow`, so the
    first and second derivatives stay finite at logits of +-1e4 and at exponents below 1.
    """
    if variant.kind == "asymmetric":
        pos = -t * ls_p if gamma == 0 else -t * torch.exp(gamma * ls_n) * ls_p
        if variant.clip == 0:
            f = 1.0 if variant.gamma_neg == 0 else torch.exp(variant.gamma_neg * ls_p)
            return pos - (1.0 - t) * f * ls_n
        p_m = torch.sigmoid(x) - variant.clip
        shifted = p_m > 0
        one_m = torch.where(shifted, torch.sigmoid(-x) + variant.clip, torch.ones_like(x))  # 1 - p_m
        f = torch.ones_like(x) if variant.gamma_neg == 0 else _safe_pow(p_m.clamp_min(0.0), variant.gamma_neg)
        return pos + torch.where(shifted, -(1.0 - t) * f * torch.log(one_m), torch.zeros_like(x))
    if variant.kind == "quality":
        if gamma == 0:
            return ce
        p = torch.sigmoid(x)
        diff = torch.where(p > 0.5, (t - 1.0) + torch.sigmoid(-x), t - p)
        return _safe_pow(diff.abs(), gamma) * ce
    if variant.kind == "varifocal":
        a = 0.75 if alpha is None else alpha
        neg = a * ce if gamma == 0 else a * torch.exp(gamma * ls_p) * ce
        pos = ce * t if variant.iou_weighted else ce
        return torch.where(t > 0, pos, neg)
    raise ValueError(f"unknown variant kind {variant.kind!r}")
