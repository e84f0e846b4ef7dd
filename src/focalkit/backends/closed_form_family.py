"""The focal family's other kinds in the eager closed form: asymmetric, quality and varifocal.

They are parameter sets (:class:`~focalkit.backends.registry.Variant` kinds) of the one sigmoid
pass of :func:`focalkit.backends.closed_form.sigmoid_focal_fwd`, which computes p = sigmoid(x),
1 - p, log p = logsigmoid(x), log(1 - p) = logsigmoid(-x) and ce = -(t log p + (1 - t) log(1 - p))
once, applies ``weight`` and the ignore mask, and reduces. Here are the per-element terms and their
exact derivatives in x (dp/dx = p (1 - p)); nothing is detached.

Asymmetric loss (Ridnik et al. 2021), gamma = gamma_pos, p_m = max(p - clip, 0)::

    loss = t (1 - p)^gamma_pos (-log p) + (1 - t) p_m^gamma_neg (-log(1 - p_m))
    d/dx = t (1 - p)^gamma_pos (gamma_pos p log p - (1 - p))
         + (1 - t) p^gamma_neg (p - gamma_neg (1 - p) log(1 - p))                    (clip = 0)
         - (1 - t) p (1 - p) p_m^gamma_neg (gamma_neg log(1 - p_m) / p_m - 1 / (1 - p_m))  (p > clip > 0)

with 1 - p_m = (1 - p) + clip, and log(1 - p_m) / p_m := -1 where p_m = 0 (the term is 0 for p <= clip).

Quality focal loss (Li et al. 2020), gamma = beta, s = |t - p|::

    loss = s^beta ce
    d/dx = s^beta [ (p - t) + beta (p (1 - p) / s) sign(p - t) ce ]      (the second term := 0 at s = 0)

Varifocal loss (Zhang et al. 2021), with the targets as scores q = t::

    loss = ce * (t if iou_weighted else 1)          where t > 0
           alpha p^gamma ce                          where t = 0
    d/dx = (p - t) * (t or 1)                        where t > 0
           alpha p^gamma (p - gamma (1 - p) log(1 - p))  where t = 0
"""

from __future__ import annotations

import torch
from torch import Tensor

from focalkit.backends.registry import Variant


def _pow(base: Tensor, exponent: float) -> Tensor | None:
    """base ** exponent, or None for exponent 0 (a factor of 1)."""
    return None if exponent == 0 else base.pow(exponent)


def _times(a: Tensor, f: Tensor | None) -> Tensor:
    return a if f is None else a * f


def family_terms(
    variant: Variant, p: Tensor, p_neg: Tensor, ls_p: Tensor, ls_n: Tensor, t: Tensor, ce: Tensor,
    alpha: float | Tensor | None, gamma: float, compute_grad: bool,
) -> tuple[Tensor, Tensor | None]:
    """The per-element loss of an asymmetric / quality / varifocal pass and its derivative in x."""
    if variant.kind == "asymmetric":
        return _asymmetric(variant, p, p_neg, ls_p, ls_n, t, gamma, compute_grad)
    if variant.kind == "quality":
        return _quality(p, p_neg, t, ce, gamma, compute_grad)
    if variant.kind == "varifocal":
        a = 0.75 if alpha is None else alpha
        return _varifocal(variant, p, p_neg, ls_n, t, ce, a, gamma, compute_grad)
    raise ValueError(f"unknown variant kind {variant.kind!r}")


def _asymmetric(
    variant: Variant, p: Tensor, p_neg: Tensor, ls_p: Tensor, ls_n: Tensor, t: Tensor, gamma_pos: float,
    compute_grad: bool,
) -> tuple[Tensor, Tensor | None]:
    gn, clip = variant.gamma_neg, variant.clip
    f_pos = _pow(p_neg, gamma_pos)  # (1 - p)^gamma_pos
    loss = _times(-t * ls_p, f_pos)
    grad = _times(t * (gamma_pos * p * ls_p - p_neg), f_pos) if compute_grad else None
    if clip == 0:
        f_neg = _pow(p, gn)
        loss = loss + _times(-(1.0 - t) * ls_n, f_neg)
        if grad is not None:
            grad = grad + _times((1.0 - t) * (p - gn * p_neg * ls_n), f_neg)
        return loss, grad
    p_m = (p - clip).clamp_min(0.0)
    shifted = p_m > 0
    one_m = torch.where(shifted, p_neg + clip, 1.0)  # 1 - p_m, without cancellation
    log_one_m = torch.log(one_m)
    f_neg = _pow(p_m, gn)
    loss = loss + torch.where(shifted, _times(-(1.0 - t) * log_one_m, f_neg), 0.0)
    if grad is not None:
        r = torch.where(shifted, log_one_m / torch.where(shifted, p_m, 1.0), -1.0)
        d_neg = -(1.0 - t) * p * p_neg * _times(gn * r - 1.0 / one_m, f_neg)
        grad = grad + torch.where(shifted, d_neg, 0.0)
    return loss, grad


def _quality(
    p: Tensor, p_neg: Tensor, t: Tensor, ce: Tensor, beta: float, compute_grad: bool
) -> tuple[Tensor, Tensor | None]:
    diff = torch.where(p > 0.5, (t - 1.0) + p_neg, t - p)  # t - p, exact near p = 1 too
    s = diff.abs()
    mod = _pow(s, beta)
    loss = _times(ce, mod)
    if not compute_grad:
        return loss, None
    grad = p - t
    if mod is not None:
        ratio = torch.where(s > 0, p * p_neg / torch.where(s > 0, s, 1.0), 0.0)
        grad = mod * (grad - beta * ratio * torch.sign(diff) * ce)
    return loss, grad


def _varifocal(
    variant: Variant, p: Tensor, p_neg: Tensor, ls_n: Tensor, t: Tensor, ce: Tensor, alpha: float | Tensor,
    gamma: float, compute_grad: bool,
) -> tuple[Tensor, Tensor | None]:
    positive = t > 0
    f_neg = _pow(p, gamma)
    neg = alpha * _times(ce, f_neg)
    pos = ce * t if variant.iou_weighted else ce
    loss = torch.where(positive, pos, neg)
    if not compute_grad:
        return loss, None
    d_pos = (p - t) * t if variant.iou_weighted else p - t
    d_neg = alpha * _times(p - gamma * p_neg * ls_n, f_neg)
    return loss, torch.where(positive, d_pos, d_neg)
