"""Asymmetric loss (Ridnik et al., ICCV 2021): the paper's formula, timm's formula, every backend.

timm's ``AsymmetricLossMultiLabel`` is re-written below from its published code (sigmoid; shift
the negatives' probability 1 - p up by clip, capped at 1; BCE of the clamped probabilities; the
one-sided weight (1 - p_t)^(gamma_pos t + gamma_neg (1 - t)); minus the sum), in float64 and on
vectors where its eps clamp does not bite. Its gradient, with the weight not detached (timm's
default), must equal ours; its value must equal our ``reduction="sum"``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import focalkit as fk
from focalkit.testing import reference_family as RF
from loss_helpers import close as _close, grad as _grad

pytestmark = pytest.mark.usefixtures("backend")

SETTINGS = [
    dict(gamma_pos=0.0, gamma_neg=4.0, clip=0.05),  # the paper's recommendation
    dict(gamma_pos=1.0, gamma_neg=4.0, clip=0.05),
    dict(gamma_pos=0.5, gamma_neg=0.0, clip=0.0),
    dict(gamma_pos=0.0, gamma_neg=2.5, clip=0.2),
    dict(gamma_pos=0.0, gamma_neg=0.3, clip=0.0),
]


def _timm_asl(x: torch.Tensor, y: torch.Tensor, gamma_pos: float, gamma_neg: float, clip: float) -> torch.Tensor:
    """timm's AsymmetricLossMultiLabel (eps = 1e-8, focal weight with gradient), float64."""
    p = torch.sigmoid(x)
    p_pos, p_neg = p, 1 - p
    if clip > 0:
        p_neg = (p_neg + clip).clamp(max=1)
    loss = y * torch.log(p_pos.clamp(min=1e-8)) + (1 - y) * torch.log(p_neg.clamp(min=1e-8))
    if gamma_pos > 0 or gamma_neg > 0:
        pt = p_pos * y + p_neg * (1 - y)
        loss = loss * torch.pow(1 - pt, gamma_pos * y + gamma_neg * (1 - y))
    return -loss.sum()


def _paper_asl(x: torch.Tensor, t: torch.Tensor, gamma_pos: float, gamma_neg: float, clip: float) -> torch.Tensor:
    """Eq. (5)-(7) of the paper, per element, float64."""
    p = torch.sigmoid(x)
    p_m = (p - clip).clamp(min=0)
    return -t * (1 - p) ** gamma_pos * torch.log(p) - (1 - t) * p_m**gamma_neg * torch.log(1 - p_m)


@pytest.mark.parametrize("kw", SETTINGS)
def test_matches_timm_sum_and_gradient(kw):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 8, generator=g, dtype=torch.float64) * 3
    y = (torch.rand(6, 8, generator=g) > 0.7).double()
    xt = x.clone().requires_grad_()
    want = _timm_asl(xt, y, **kw)
    want.backward()
    got = fk.asymmetric_loss(x.float(), y.float(), reduction="sum", **kw)
    _close(got, want.item(), rtol=1e-5)
    _close(_grad(lambda z: fk.asymmetric_loss(z, y.float(), reduction="sum", **kw), x.float()), xt.grad, rtol=1e-4)
    # float64 in, float64 accuracy
    _close(fk.asymmetric_loss(x, y, reduction="sum", **kw), want.item(), rtol=1e-12)


@pytest.mark.parametrize("kw", SETTINGS)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_paper_formula_and_reference(kw, reduction):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 7, generator=g) * 2
    t = torch.rand(5, 7, generator=g)  # soft targets too
    t[t > 0.6] = 1.0
    t[t < 0.2] = 0.0
    per = _paper_asl(x.double(), t.double(), **kw)
    want = {"none": per, "mean": per.mean(), "sum": per.sum()}[reduction]
    got = fk.asymmetric_loss(x, t, reduction=reduction, **kw)
    _close(got, want)
    _close(got, RF.asymmetric_loss(x, t, reduction=reduction, **kw))
    _close(_grad(lambda z: fk.asymmetric_loss(z, t, reduction=reduction, **kw), x),
           RF.asymmetric_grad(x, t, reduction=reduction, **kw), rtol=1e-4)  # fmt: skip


def test_no_focusing_no_clip_is_bce():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 6, generator=g) * 4
    t = torch.rand(4, 6, generator=g)
    want = torch.nn.functional.binary_cross_entropy_with_logits(x.double(), t.double())
    _close(fk.asymmetric_loss(x, t, gamma_pos=0.0, gamma_neg=0.0, clip=0.0), want)


def test_clip_discards_easy_negatives_with_zero_gradient():
    x = torch.tensor([-5.0, -3.0, -2.0])  # p = 0.0067, 0.047, 0.119
    t = torch.zeros(3)
    loss = fk.asymmetric_loss(x, t, clip=0.05, reduction="none")
    grad = _grad(lambda z: fk.asymmetric_loss(z, t, clip=0.05, reduction="none"), x)
    assert loss[0].item() == 0.0 and loss[1].item() == 0.0 and loss[2].item() > 0
    assert grad[0].item() == 0.0 and grad[1].item() == 0.0 and grad[2].item() > 0


def test_class_indices_mean_the_same_as_the_dense_targets():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 4, 3, generator=g)
    y = torch.randint(0, 5, (5, 3), generator=g)  # 4 = background
    dense = torch.nn.functional.one_hot(y, 5)[..., :4].movedim(-1, 1).float()
    _close(fk.asymmetric_loss(x, y), fk.asymmetric_loss(x, dense))


@pytest.mark.parametrize("kw, match, exc", [
    (dict(gamma_neg=-1.0), "gamma_neg", ValueError),
    (dict(gamma_pos=float("nan")), "gamma_pos", ValueError),
    (dict(gamma_pos=fk.FLSD53), "gamma_pos", TypeError),
    (dict(clip=1.0), "clip", ValueError),
    (dict(clip=-0.1), "clip", ValueError),
    (dict(clip="0.05"), "clip", TypeError),
    (dict(reduction="avg"), "reduction", ValueError),
])  # fmt: skip
def test_bad_arguments_name_themselves(kw, match, exc):
    x = torch.randn(3, 4)
    with pytest.raises(exc, match=match):
        fk.asymmetric_loss(x, torch.zeros(3, 4), **kw)
    if "reduction" not in kw:
        with pytest.raises(exc, match=match):
            fk.AsymmetricLoss(**kw)
    with pytest.raises(ValueError, match="targets"):
        fk.asymmetric_loss(x, torch.full((3, 4), 2.0))
