"""Quality focal loss (GFL, Li et al., NeurIPS 2020): the paper's formula, mmdet's formula, every backend.

mmdet's ``quality_focal_loss`` (the tuple form: labels + scores, and the tensor-target form) is
re-written below from its published code: the BCE of every element against 0 scaled by p^beta,
then, at the positives, the BCE against the score scaled by |score - p|^beta; summed over the
classes. Both forms must equal ours, and so must the autograd gradient of that formula (mmdet does
not detach the factor).
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


def _mmdet_qfl(pred: torch.Tensor, label: torch.Tensor, score: torch.Tensor, beta: float) -> torch.Tensor:
    """mmdet's quality_focal_loss(pred, (label, score)): per anchor, (N,); label C = background."""
    p = pred.sigmoid()
    loss = F.binary_cross_entropy_with_logits(pred, torch.zeros_like(pred), reduction="none") * p.pow(beta)
    c = pred.size(1)
    pos = ((label >= 0) & (label < c)).nonzero().squeeze(1)
    pos_label = label[pos].long()
    scale = score[pos] - p[pos, pos_label]
    loss = loss.clone()
    loss[pos, pos_label] = F.binary_cross_entropy_with_logits(
        pred[pos, pos_label], score[pos], reduction="none"
    ) * scale.abs().pow(beta)
    return loss.sum(dim=1)


def _mmdet_qfl_tensor_target(pred: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """mmdet's quality_focal_loss_tensor_target: dense scores of the logits' shape; (N,)."""
    p = pred.sigmoid()
    loss = F.binary_cross_entropy_with_logits(pred, torch.zeros_like(pred), reduction="none") * p.pow(beta)
    pos = target != 0
    loss = loss.clone()
    loss[pos] = F.binary_cross_entropy_with_logits(pred[pos], target[pos], reduction="none") * (
        target[pos] - p[pos]
    ).abs().pow(beta)
    return loss.sum(dim=1)


def _vectors(seed: int, n: int = 12, c: int = 5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, c + 1, (n,), generator=g)  # c = background
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    dense = F.one_hot(labels, c + 1)[:, :c].double() * scores[:, None]
    return x, labels, scores, dense


@pytest.mark.parametrize("beta", [2.0, 1.0, 0.5])
def test_matches_mmdet_both_forms_loss_and_gradient(beta):
    x, labels, scores, dense = _vectors(0)
    xt = x.clone().requires_grad_()
    want = _mmdet_qfl(xt, labels, scores, beta)
    want.sum().backward()
    _close(_mmdet_qfl_tensor_target(x, dense, beta), want)
    got_dense = fk.quality_focal_loss(x.float(), dense.float(), beta=beta, reduction="none").sum(1)
    got_labels = fk.quality_focal_loss(x.float(), labels, scores=scores.float(), beta=beta, reduction="none").sum(1)
    _close(got_dense, want)
    _close(got_labels, want)
    kw = dict(beta=beta, reduction="sum")
    _close(_grad(lambda z: fk.quality_focal_loss(z, dense.float(), **kw), x.float()), xt.grad, rtol=1e-4)
    _close(_grad(lambda z: fk.quality_focal_loss(z, labels, scores=scores.float(), **kw), x.float()), xt.grad, rtol=1e-4)
    _close(fk.quality_focal_loss(x, dense, **kw), want.sum().item(), rtol=1e-12)


@pytest.mark.parametrize("beta", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_paper_formula_and_reference(beta, reduction):
    x, labels, scores, dense = _vectors(1)
    xd = x
    per = (dense - xd.sigmoid()).abs() ** beta * F.binary_cross_entropy_with_logits(xd, dense, reduction="none")
    want = {"none": per, "mean": per.mean(), "sum": per.sum()}[reduction]
    got = fk.quality_focal_loss(x.float(), dense.float(), beta=beta, reduction=reduction)
    _close(got, want)
    kw = dict(beta=beta, reduction=reduction)
    _close(got, RF.quality_focal_loss(x, dense, **kw))
    _close(_grad(lambda z: fk.quality_focal_loss(z, dense.float(), **kw), x.float()),
           RF.quality_focal_grad(x, dense, **kw), rtol=1e-4)  # fmt: skip


def test_hard_targets_are_the_focal_loss_without_alpha():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 4, generator=g) * 2
    t = (torch.rand(6, 4, generator=g) > 0.6).float()
    _close(fk.quality_focal_loss(x, t, beta=2.0), fk.sigmoid_focal_loss(x, t, alpha=None, gamma=2.0))


@pytest.mark.parametrize("ignore_index", [None, -1])
def test_class_indices_with_scores_ignore_index_and_normalizer(ignore_index):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 5, generator=g)  # (N, C, d)
    y = torch.randint(0, 4, (4, 5), generator=g)  # 3 = background
    s = torch.rand(4, 5, generator=g)
    if ignore_index is not None:
        y[1, 2] = ignore_index
    kw = dict(beta=2.0, normalizer=3.0, ignore_index=ignore_index, scores=s)
    _close(fk.quality_focal_loss(x, y, **kw), RF.quality_focal_loss(x, y, **kw))
    _close(_grad(lambda z: fk.quality_focal_loss(z, y, **kw), x), RF.quality_focal_grad(x, y, **kw), rtol=1e-4)
    # without scores, class indices are hard labels (score 1)
    dense = F.one_hot(y.clamp(min=0), 4)[..., :3].movedim(-1, 1).float()
    got = fk.quality_focal_loss(x, y, ignore_index=ignore_index, reduction="none")
    want = fk.quality_focal_loss(x, dense, reduction="none")
    if ignore_index is not None:
        assert got[1, :, 2].abs().max().item() == 0.0
        want[1, :, 2] = 0.0
    _close(got, want)


def test_scores_that_require_grad_take_the_composed_path():
    x, labels, scores, dense = _vectors(4)
    s = scores.float().clone().requires_grad_()
    loss = fk.quality_focal_loss(x.float(), labels, scores=s)
    loss.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()


@pytest.mark.parametrize("kw, match, exc", [
    (dict(beta=-1.0), "beta", ValueError),
    (dict(beta=fk.FLSD53), "beta", TypeError),
    (dict(beta="2"), "beta", TypeError),
])  # fmt: skip
def test_bad_arguments_name_themselves(kw, match, exc):
    x = torch.randn(3, 4)
    with pytest.raises(exc, match=match):
        fk.quality_focal_loss(x, torch.zeros(3, 4), **kw)
    with pytest.raises(exc, match=match):
        fk.QualityFocalLoss(**kw)


def test_bad_scores_name_the_argument():
    x = torch.randn(3, 4)
    y = torch.tensor([0, 1, 4])
    with pytest.raises(ValueError, match="scores"):
        fk.quality_focal_loss(x, y, scores=torch.tensor([0.5, 1.5, 0.2]))
    with pytest.raises(ValueError, match="scores"):
        fk.quality_focal_loss(x, y, scores=torch.rand(4))
    with pytest.raises(TypeError, match="scores"):
        fk.quality_focal_loss(x, y, scores=torch.tensor([1, 0, 1]))
    with pytest.raises(TypeError, match="scores"):
        fk.quality_focal_loss(x, y, scores=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="scores"):
        fk.quality_focal_loss(x, torch.zeros(3, 4), scores=torch.rand(3))
    with pytest.raises(ValueError, match="targets"):
        fk.quality_focal_loss(x, torch.full((3, 4), 1.5))
