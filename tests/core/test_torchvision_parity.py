"""focalkit against torchvision's ``sigmoid_focal_loss`` formula.

torchvision cannot be installed beside this torch build, so its function is re-typed here from its
source (torchvision/ops/focal_loss.py, v0.17-0.29), including its convention that alpha < 0 turns
alpha off. Every case that both support agrees to float rounding.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import focalkit as fk

pytestmark = pytest.mark.usefixtures("backend")


def torchvision_sigmoid_focal_loss(inputs, targets, alpha: float = 0.25, gamma: float = 2, reduction: str = "none"):
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "none":
        pass
    elif reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.0, 5.0])
@pytest.mark.parametrize("alpha", [-1.0, 0.0, 0.25, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_torchvision_formula(gamma, alpha, soft, reduction):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 8, dtype=torch.float64, generator=g) * 4
    t = torch.rand(16, 8, dtype=torch.float64, generator=g)
    if not soft:
        t = (t > 0.8).double()
    ours = fk.sigmoid_focal_loss(x, t, alpha=None if alpha < 0 else alpha, gamma=gamma, reduction=reduction)
    theirs = torchvision_sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    # gradients too
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    fk.sigmoid_focal_loss(xa, t, alpha=None if alpha < 0 else alpha, gamma=gamma, reduction="sum").backward()
    torchvision_sigmoid_focal_loss(xb, t, alpha=alpha, gamma=gamma, reduction="sum").backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-8, atol=1e-12)


def test_where_torchvision_fails_focalkit_does_not():
    """gamma < 1 at a saturated logit: torchvision's gradient is NaN (0 * inf), focalkit's is ~0."""
    x = torch.tensor([50.0], requires_grad=True)
    t = torch.ones(1)
    torchvision_sigmoid_focal_loss(x, t, gamma=0.5, reduction="sum").backward()
    assert torch.isnan(x.grad).all()
    x.grad = None
    fk.sigmoid_focal_loss(x, t, gamma=0.5, reduction="sum").backward()
    assert torch.isfinite(x.grad).all() and abs(x.grad.item()) < 1e-30
