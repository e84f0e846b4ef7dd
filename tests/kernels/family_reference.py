"""Float64 references of the focal family for the kernel tests, written from contract.md's formulas.

Autograd in float64 gives the gradients (independent of the kernels' analytic ones); a piecewise
gamma is evaluated on detached probabilities (the gradient treats it as a constant).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from focalkit.backends.registry import Variant


def _gamma_at(gamma, pt: torch.Tensor) -> torch.Tensor:
    if hasattr(gamma, "thresholds"):
        g = torch.full_like(pt, gamma.values[0])
        for th, v in zip(gamma.thresholds, gamma.values[1:]):
            g = torch.where(pt >= th, torch.full_like(pt, v), g)
        return g
    return torch.full_like(pt, float(gamma))


def _pow(base: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """base ** g with 0 ** 0 = 1 (torch.pow agrees; spelled out for the reader)."""
    return torch.where(g == 0, torch.ones_like(base), base.pow(g))


def sigmoid_dense_targets(x, targets, *, labels, ignore_index, scores=None, ls=0.0):
    """(t float64 of x's shape, valid mask) from dense targets or class indices (C = background)."""
    if labels:
        c = x.shape[1]
        y = targets.long()
        valid_pos = torch.ones_like(y, dtype=torch.bool) if ignore_index is None else y != ignore_index
        yc = torch.where(valid_pos, y, c)
        t = F.one_hot(yc, c + 1)[..., :c].movedim(-1, 1).double()
        if scores is not None:
            t = t * scores.double().unsqueeze(1)
        elif ls:
            t = t * (1 - ls) + 0.5 * ls
        return t, valid_pos.unsqueeze(1).expand(x.shape)
    valid = torch.ones_like(targets, dtype=torch.bool) if ignore_index is None else targets != ignore_index
    t = torch.where(valid, targets.double(), 0.0)
    if ls:
        t = t * (1 - ls) + 0.5 * ls
    return t, valid


def sigmoid_family(x, t, valid, *, alpha, gamma, variant: Variant | None):
    """Per-element float64 loss and d(sum of loss)/dx (autograd)."""
    v = variant or Variant()
    xd = x.detach().double().requires_grad_(True)
    p = torch.sigmoid(xd)
    logp, log1mp = F.logsigmoid(xd), F.logsigmoid(-xd)
    ce = -(t * logp + (1 - t) * log1mp)
    if v.kind == "focal":
        q = p * (1 - t) + (1 - p) * t
        g = _gamma_at(gamma, (1 - q).detach())
        at = 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)
        mod = _pow(q, g)
        loss = at * mod * ce + v.epsilon * mod * q
    elif v.kind == "asymmetric":
        gp = torch.full_like(p, float(gamma))
        pm = (p - v.clip).clamp(min=0)
        lneg = -log1mp if v.clip == 0 else -torch.log1p(-pm)
        loss = t * _pow(1 - p, gp) * (-logp) + (1 - t) * _pow(pm, torch.full_like(p, v.gamma_neg)) * lneg
    elif v.kind == "quality":
        loss = _pow((t - p).abs(), torch.full_like(p, float(gamma))) * ce
    else:  # varifocal
        a = 0.75 if alpha is None else alpha  # VarifocalNet's default (the eager closed form's too)
        w_pos = t if v.iou_weighted else torch.ones_like(t)
        loss = torch.where(t > 0, w_pos * ce, a * _pow(p, torch.full_like(p, float(gamma))) * ce)
    loss = torch.where(valid, loss, 0.0)
    (grad,) = torch.autograd.grad(loss.sum(), xd)
    return loss.detach(), grad


def softmax_family(x, targets, *, alpha, gamma, epsilon, ignore_index, ls=0.0):
    """Per-position float64 loss and gradient; targets are class indices or probabilities."""
    xd = x.detach().double().requires_grad_(True)
    c = x.shape[1]
    logp = torch.log_softmax(xd, 1)
    p = logp.exp()
    if targets.is_floating_point():
        t = targets.double()
        valid = torch.ones(x.shape[:1] + x.shape[2:], dtype=torch.bool)
    else:
        valid = targets != ignore_index
        y = torch.where(valid, targets, 0).long()
        t = F.one_hot(y, c).movedim(-1, 1).double()
    if ls:
        t = t * (1 - ls) + ls / c
    a = torch.ones(c, dtype=torch.float64) if alpha is None else alpha.double()
    a = a.reshape((1, -1) + (1,) * (x.dim() - 2))
    g = _gamma_at(gamma, p.detach())
    w = a * t
    terms = torch.where(w > 0, w * _pow(1 - p, g) * logp, 0.0)
    loss = -terms.sum(1)
    pt = (t * p).sum(1)
    gt = _gamma_at(gamma, pt.detach())
    loss = loss + epsilon * _pow(1 - pt, gt + 1)
    loss = torch.where(valid, loss, 0.0)
    (grad,) = torch.autograd.grad(loss.sum(), xd)
    return loss.detach(), grad
