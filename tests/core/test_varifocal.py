"""Varifocal loss (VarifocalNet, Zhang et al., CVPR 2021): paper, mmdet's formula, every backend.

mmdet's ``varifocal_loss`` is re-written below from its published code: the focal weight is the
target where the target is > 0 (1 without IoU weighting) and alpha |p - target|^gamma where it is
<= 0, times the BCE-with-logits against the target; the weight is not detached, so the gradient
goes through it. Our loss and gradient must equal it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import focalkit as fk
from focalkit.testing import reference_family as RF
from loss_helpers import close as _close, grad as _grad

pytestmark = pytest.mark.usefixtures("backend")


def _mmdet_vfl(pred: torch.Tensor, target: torch.Tensor, alpha: float, gamma: float, iou_weighted: bool) -> torch.Tensor:
    p = pred.sigmoid()
    pos = (target > 0).to(pred.dtype)
    neg = (target <= 0).to(pred.dtype)
    focal_weight = (target * pos if iou_weighted else pos) + alpha * (p - target).abs().pow(gamma) * neg
    return F.binary_cross_entropy_with_logits(pred, target, reduction="none") * focal_weight


def _scores(seed: int, n: int = 10, c: int = 4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=torch.float64) * 3
    q = torch.rand(n, c, generator=g, dtype=torch.float64)
    q[q < 0.6] = 0.0
    q[0, 0], q[1, 1] = 1.0, 0.0  # q exactly 1 and 0
    return x, q


@pytest.mark.parametrize("alpha, gamma", [(0.75, 2.0), (0.5, 0.5), (1.0, 0.0)])
@pytest.mark.parametrize("iou_weighted", [True, False])
def test_matches_mmdet_loss_and_gradient(alpha, gamma, iou_weighted):
    x, q = _scores(0)
    xt = x.clone().requires_grad_()
    want = _mmdet_vfl(xt, q, alpha, gamma, iou_weighted)
    want.sum().backward()
    kw = dict(alpha=alpha, gamma=gamma, iou_weighted=iou_weighted)
    _close(fk.varifocal_loss(x.float(), q.float(), reduction="none", **kw), want)
    _close(_grad(lambda z: fk.varifocal_loss(z, q.float(), reduction="sum", **kw), x.float()), xt.grad, rtol=1e-4)
    _close(fk.varifocal_loss(x, q, reduction="sum", **kw), want.sum().item(), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_paper_formula_and_reference(reduction):
    x, q = _scores(1)
    p = x.sigmoid()
    bce = F.binary_cross_entropy_with_logits(x, q, reduction="none")
    per = torch.where(q > 0, q * bce, 0.75 * p**2 * bce)
    want = {"none": per, "mean": per.mean(), "sum": per.sum()}[reduction]
    got = fk.varifocal_loss(x.float(), q.float(), reduction=reduction)
    _close(got, want)
    _close(got, RF.varifocal_loss(x, q, reduction=reduction))
    _close(_grad(lambda z: fk.varifocal_loss(z, q.float(), reduction=reduction), x.float()),
           RF.varifocal_grad(x, q, reduction=reduction), rtol=1e-4)  # fmt: skip


def test_class_indices_with_scores():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(8, 3, generator=g)
    y = torch.randint(0, 4, (8,), generator=g)
    s = torch.rand(8, generator=g)
    dense = F.one_hot(y, 4)[:, :3].float() * s[:, None]
    kw = dict(normalizer=2.0, weight=torch.rand(8, 3, generator=g))
    _close(fk.varifocal_loss(x, y, scores=s, **kw), fk.varifocal_loss(x, dense, **kw))
    _close(fk.varifocal_loss(x, y, scores=s, **kw), RF.varifocal_loss(x, y, scores=s, **kw))
    _close(_grad(lambda z: fk.varifocal_loss(z, y, scores=s, **kw), x), RF.varifocal_grad(x, y, scores=s, **kw), rtol=1e-4)


@pytest.mark.parametrize("kw, match, exc", [
    (dict(alpha=-0.5), "alpha", ValueError),
    (dict(alpha=None), "alpha", TypeError),
    (dict(gamma=-1.0), "gamma", ValueError),
    (dict(gamma=fk.FLSD53), "gamma", TypeError),
    (dict(iou_weighted=1), "iou_weighted", TypeError),
])  # fmt: skip
def test_bad_arguments_name_themselves(kw, match, exc):
    x = torch.randn(3, 4)
    with pytest.raises(exc, match=match):
        fk.varifocal_loss(x, torch.zeros(3, 4), **kw)
    with pytest.raises(exc, match=match):
        fk.VarifocalLoss(**kw)
