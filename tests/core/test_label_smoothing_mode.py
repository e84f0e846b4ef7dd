"""``label_smoothing_mode="uniform"`` of the sigmoid loss: targets smoothed toward 1/C, not 1/2.

The expected values come from the float64 NumPy reference given targets smoothed here, in NumPy,
by the formula t (1 - ls) + ls / C (C = logits.shape[1]); timm's ``BinaryCrossEntropy`` itself is
compared in ``tests/integrations/test_timm.py``. Every test runs once per available backend.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import focalkit as fk
from focalkit.testing import reference as R

pytestmark = pytest.mark.usefixtures("backend")


def _smoothed(x: torch.Tensor, targets: torch.Tensor, ls: float, ignore_index: int | None) -> np.ndarray:
    """Dense float64 targets smoothed toward 1/C; ignored elements hold -1 (outside [0, 1])."""
    c = x.shape[1]
    y = targets.numpy()
    if targets.shape == x.shape:
        valid = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
        t = y.astype(np.float64)
    else:  # class indices along dimension 1, value C = background
        valid_pos = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
        t = np.stack([(y == k) & valid_pos for k in range(c)], axis=1).astype(np.float64)
        valid = np.broadcast_to(np.expand_dims(valid_pos, 1), t.shape)
    return np.where(valid, t * (1 - ls) + ls / c, -1.0)


def _check(x, targets, ignore_index=None, rtol=1e-5, **kw):
    ls = kw["label_smoothing"]
    t_ref = _smoothed(x, targets, ls, ignore_index)
    ref_kw = {k: v for k, v in kw.items() if k != "label_smoothing"}
    xg = x.clone().requires_grad_(True)
    out = fk.sigmoid_focal_loss(xg, targets, ignore_index=ignore_index, label_smoothing_mode="uniform", **kw)
    expected = R.sigmoid_focal_loss(x, t_ref, ignore_index=-1, **ref_kw)
    np.testing.assert_allclose(out.detach().double().numpy(), expected, rtol=rtol, atol=1e-6)
    (out.sum() if out.dim() else out).backward()
    g_ref = R.sigmoid_focal_grad(x, t_ref, ignore_index=-1, **ref_kw)
    np.testing.assert_allclose(xg.grad.double().numpy(), g_ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_hard_and_soft_float_targets(gamma, alpha, reduction):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=g) * 3
    for t in ((torch.rand(6, 5, generator=g) > 0.7).float(), torch.rand(6, 5, generator=g)):
        _check(x, t, gamma=gamma, alpha=alpha, reduction=reduction, label_smoothing=0.1)


@pytest.mark.parametrize("shape", [(8, 4), (2, 3, 4, 5)])
@pytest.mark.parametrize("ignore_index", [None, -1, 255])
def test_class_indices_with_background_and_ignore(shape, ignore_index):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, generator=g) * 2
    c = shape[1]
    y = torch.randint(0, c + 1, shape[:1] + shape[2:], generator=g)  # value C = background
    if ignore_index is not None:
        y[0] = ignore_index
    for reduction in ("none", "mean"):
        _check(x, y, ignore_index=ignore_index, gamma=2.0, reduction=reduction, label_smoothing=0.2)


def test_same_shape_integer_mask_with_ignore():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 3, generator=g)
    mask = torch.randint(0, 2, (5, 3), generator=g)
    mask[1, 2] = -1
    _check(x, mask, ignore_index=-1, gamma=1.0, reduction="mean", label_smoothing=0.3)


def test_an_ignore_index_of_1_is_not_confused_with_a_smoothed_target_near_1():
    """Tiny smoothing leaves 1 - ls/2 == 1.0 in float32; ignored elements must still be the ignored ones."""
    x = torch.tensor([[2.0, -1.0], [0.5, 1.5], [-2.0, 0.3]])
    y = torch.tensor([0, 1, 2])  # class 1 ignored, 2 = background
    _check(x, y, ignore_index=1, gamma=2.0, reduction="sum", label_smoothing=1e-9)


def test_two_classes_uniform_is_binary():
    """With C = 2, 1/C = 1/2: both modes give the same targets."""
    g = torch.Generator().manual_seed(3)
    x, t = torch.randn(7, 2, generator=g), torch.rand(7, 2, generator=g)
    a = fk.sigmoid_focal_loss(x, t, label_smoothing=0.2, label_smoothing_mode="uniform")
    b = fk.sigmoid_focal_loss(x, t, label_smoothing=0.2)
    torch.testing.assert_close(a, b)


def test_default_is_toward_one_half_and_zero_smoothing_changes_nothing():
    g = torch.Generator().manual_seed(4)
    x, t = torch.randn(4, 6, generator=g), (torch.rand(4, 6, generator=g) > 0.5).float()
    np.testing.assert_allclose(
        fk.sigmoid_focal_loss(x, t, label_smoothing=0.1).double().numpy(),
        R.sigmoid_focal_loss(x, t, label_smoothing=0.1), rtol=1e-5,
    )
    torch.testing.assert_close(
        fk.sigmoid_focal_loss(x, t, label_smoothing_mode="uniform"), fk.sigmoid_focal_loss(x, t)
    )


def test_soft_targets_keep_their_gradient():
    """Targets that require grad (distillation) still get d(loss)/d(targets) in uniform mode."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, generator=g)
    t = torch.rand(3, 4, generator=g).requires_grad_(True)
    fk.sigmoid_focal_loss(x, t, label_smoothing=0.2, label_smoothing_mode="uniform").backward()
    t2 = t.detach().clone().requires_grad_(True)  # the same loss, smoothed by hand
    fk.sigmoid_focal_loss(x, t2 * 0.8 + 0.2 / 4).backward()
    torch.testing.assert_close(t.grad, t2.grad)


def test_low_precision_logits():
    g = torch.Generator().manual_seed(6)
    x = (torch.randn(16, 10, generator=g) * 4).to(torch.bfloat16)
    y = torch.randint(0, 10, (16,), generator=g)
    out = fk.sigmoid_focal_loss(x, y, label_smoothing=0.1, label_smoothing_mode="uniform")
    assert out.dtype == torch.bfloat16
    expected = R.sigmoid_focal_loss(x.float(), _smoothed(x, y, 0.1, None))
    np.testing.assert_allclose(float(out), expected, rtol=1e-2)


def test_module_and_focal_loss_pass_the_mode_through():
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(5, 4, generator=g), torch.randint(0, 4, (5,), generator=g)
    expected = fk.sigmoid_focal_loss(x, y, label_smoothing=0.1, label_smoothing_mode="uniform")
    crit = fk.SigmoidFocalLoss(label_smoothing=0.1, label_smoothing_mode="uniform")
    torch.testing.assert_close(crit(x, y), expected)
    torch.testing.assert_close(fk.FocalLoss("multilabel", label_smoothing=0.1, label_smoothing_mode="uniform")(x, y), expected)
    assert not torch.equal(fk.SigmoidFocalLoss(label_smoothing=0.1)(x, y), expected)


@pytest.mark.parametrize("bad, err", [("timm", ValueError), ("Uniform", ValueError), (1, TypeError), (None, TypeError)])
def test_bad_mode_is_refused_naming_the_argument(bad, err):
    x, t = torch.randn(3, 4), torch.rand(3, 4)
    with pytest.raises(err, match="label_smoothing_mode"):
        fk.sigmoid_focal_loss(x, t, label_smoothing=0.1, label_smoothing_mode=bad)
    with pytest.raises(err, match="label_smoothing_mode"):
        fk.sigmoid_focal_loss(x, t, label_smoothing_mode=bad)  # checked with no smoothing too
    with pytest.raises(err, match="label_smoothing_mode"):
        fk.SigmoidFocalLoss(label_smoothing_mode=bad)


@pytest.mark.parametrize("shape", [(8,), (8, 1), (8, 1, 4, 4)])
def test_uniform_needs_a_class_dimension_of_at_least_two(shape):
    x = torch.randn(*shape)
    with pytest.raises(ValueError, match=r"label_smoothing_mode=\"uniform\".*C >= 2"):
        fk.sigmoid_focal_loss(x, torch.rand(*shape), label_smoothing=0.1, label_smoothing_mode="uniform")
    fk.sigmoid_focal_loss(x, torch.rand(*shape), label_smoothing_mode="uniform")  # no smoothing: nothing to spread
