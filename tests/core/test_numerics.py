"""Extreme values, half precision, empty and all-ignored batches, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import focalkit as fk
from focalkit.testing import reference as R

pytestmark = pytest.mark.usefixtures("backend")

HALF = [torch.float16, torch.bfloat16]


def _loss_and_grad(fn, x):
    x = x.detach().clone().requires_grad_(True)
    loss = fn(x)
    loss.sum().backward()
    return loss, x.grad


def _finite(*ts):
    return all(bool(torch.isfinite(t.float()).all()) for t in ts)


@pytest.mark.parametrize("dtype", [torch.float32, *HALF])
@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0, 2.0, 10.0])
def test_extreme_logits_give_finite_loss_and_grad(dtype, gamma):
    x = torch.tensor([[1e4, -1e4, 0.0, 30.0], [-1e4, 1e4, -30.0, 5.0]], dtype=dtype)
    t = torch.tensor([[1.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 1.0]], dtype=dtype)
    for reduction in ("none", "mean"):
        loss, grad = _loss_and_grad(lambda z: fk.sigmoid_focal_loss(z, t, gamma=gamma, reduction=reduction), x)
        assert _finite(loss, grad), (loss, grad)
        assert loss.dtype == dtype and grad.dtype == dtype
    # the badly wrong element (x = -1e4, t = 1) has loss alpha * |x| (1e4 rounded to the dtype)
    none = fk.sigmoid_focal_loss(x.float(), t.float(), gamma=gamma, reduction="none")
    assert none[1, 0].item() == pytest.approx(0.25 * -x[1, 0].item(), rel=1e-6)
    y = torch.tensor([0, 1])
    for reduction in ("none", "mean"):
        loss, grad = _loss_and_grad(lambda z: fk.softmax_focal_loss(z, y, gamma=gamma, reduction=reduction), x)
        assert _finite(loss, grad), (loss, grad)
        assert loss.dtype == dtype and grad.dtype == dtype


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.9])
def test_gamma_below_one_at_perfect_prediction_has_zero_gradient_not_nan(gamma):
    # p_t == 1 exactly in float32: the naive gradient is 0 * inf
    x = torch.tensor([100.0, -100.0])
    t = torch.tensor([1.0, 0.0])
    loss, grad = _loss_and_grad(lambda z: fk.sigmoid_focal_loss(z, t, gamma=gamma, reduction="sum"), x)
    assert _finite(loss, grad) and loss.item() == 0.0 and grad.abs().max().item() == 0.0
    xs = torch.tensor([[100.0, 0.0, -100.0]])
    loss, grad = _loss_and_grad(
        lambda z: fk.softmax_focal_loss(z, torch.tensor([0]), gamma=gamma, reduction="sum"), xs
    )
    assert _finite(loss, grad) and grad.abs().max().item() < 1e-30


@pytest.mark.parametrize("dtype", HALF)
def test_half_precision_is_computed_in_float32(dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(64, 8, generator=g) * 3).to(dtype)
    t = (torch.rand(64, 8, generator=g) > 0.9).to(dtype)
    out = fk.sigmoid_focal_loss(x, t)
    assert out.dtype == dtype
    ref = R.sigmoid_focal_loss(x.float(), t.float())  # the same rounded inputs, in float64
    np.testing.assert_allclose(out.float().item(), ref, rtol=1e-2)
    y = torch.randint(0, 8, (64,), generator=g)
    out = fk.softmax_focal_loss(x, y)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.float().item(), R.softmax_focal_loss(x.float(), y), rtol=1e-2)
    # the gradient too: compare with the float32 gradient of the same rounded inputs
    _, g_half = _loss_and_grad(lambda z: fk.softmax_focal_loss(z, y, reduction="sum"), x)
    _, g_32 = _loss_and_grad(lambda z: fk.softmax_focal_loss(z, y, reduction="sum"), x.float())
    assert g_half.dtype == dtype
    torch.testing.assert_close(g_half.float(), g_32, rtol=2e-2, atol=1e-3)


def test_float16_small_probabilities_do_not_underflow():
    # in float16, sigmoid(-12) ~ 6e-6 is subnormal; computing in float32 keeps the loss exact
    x = torch.tensor([-12.0, 12.0], dtype=torch.float16)
    t = torch.tensor([0.0, 1.0], dtype=torch.float16)
    out = fk.sigmoid_focal_loss(x, t, alpha=None, gamma=1.0, reduction="none")
    ref = R.sigmoid_focal_loss(x.float(), t.float(), alpha=None, gamma=1.0, reduction="none")
    # float16 can hold ~3.6e-11 only as 0: the result is rounded once, at the end
    np.testing.assert_allclose(out.float().numpy(), ref.astype(np.float16).astype(np.float64), rtol=1e-3)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_empty_tensors(reduction):
    x = torch.zeros(0, 5, requires_grad=True)
    out = fk.sigmoid_focal_loss(x, torch.zeros(0, 5), reduction=reduction)
    out.sum().backward()
    assert out.shape == ((0, 5) if reduction == "none" else ())
    assert _finite(out) and x.grad.shape == (0, 5)
    x2 = torch.zeros(0, 5, 3, requires_grad=True)
    out = fk.softmax_focal_loss(x2, torch.zeros(0, 3, dtype=torch.long), reduction=reduction)
    out.sum().backward()
    assert out.shape == ((0, 3) if reduction == "none" else ()) and _finite(out)
    out = fk.sigmoid_focal_loss(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), reduction=reduction)
    assert _finite(out)
    if reduction != "none":
        assert out.item() == 0.0


def test_all_ignored_batch_gives_zero_loss_and_zero_grad():
    x = torch.randn(4, 3, 5)
    y = torch.full((4, 5), -100)
    loss, grad = _loss_and_grad(lambda z: fk.softmax_focal_loss(z, y), x)
    assert loss.item() == 0.0 and grad.abs().sum().item() == 0.0 and _finite(grad)
    y_sig = torch.full((4, 5), 255)
    loss, grad = _loss_and_grad(lambda z: fk.sigmoid_focal_loss(z, y_sig, ignore_index=255), x)
    assert loss.item() == 0.0 and grad.abs().sum().item() == 0.0 and _finite(grad)
    t = torch.full((4, 3, 5), -1.0)
    loss, grad = _loss_and_grad(lambda z: fk.sigmoid_focal_loss(z, t, ignore_index=-1), x)
    assert loss.item() == 0.0 and grad.abs().sum().item() == 0.0
    loss, grad = _loss_and_grad(
        lambda z: fk.sigmoid_focal_loss(z, y_sig, ignore_index=255, normalizer=fk.num_positives(y_sig, 3)), x
    )
    assert loss.item() == 0.0 and _finite(grad)


def test_no_probability_clamping_bias():
    # eps-clamping implementations put a floor under log(p); focalkit follows the true loss
    x = torch.tensor([-40.0], dtype=torch.float64)
    out = fk.sigmoid_focal_loss(x, torch.ones(1, dtype=torch.float64), alpha=None, gamma=0.0, reduction="sum")
    assert out.item() == pytest.approx(40.0, rel=1e-12)
    xs = torch.tensor([[-50.0, 50.0]], dtype=torch.float64)
    out = fk.softmax_focal_loss(xs, torch.tensor([0]), gamma=2.0, reduction="sum")
    assert out.item() == pytest.approx(100.0, rel=1e-12)
