"""The functional losses against the float64 NumPy reference and PyTorch's cross-entropy.

Every test here runs once per available backend (the ``backend`` fixture in conftest.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import focalkit as fk
from focalkit.testing import reference as R

pytestmark = pytest.mark.usefixtures("backend")

GAMMAS = [0.0, 0.5, 1.0, 2.0, 5.0]


def _close(actual: torch.Tensor, expected, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    np.testing.assert_allclose(actual.detach().double().cpu().numpy(), np.asarray(expected), rtol=rtol, atol=atol)


def _grad(fn, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    fn(x).backward()
    return x.grad


# ---------------------------------------------------------------- sigmoid


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [None, 0.25, 0.9])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_sigmoid_hard_targets_match_reference(gamma, alpha, reduction):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 5, generator=g) * 3
    t = (torch.rand(7, 5, generator=g) > 0.7).float()
    out = fk.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction)
    _close(out, R.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction))


@pytest.mark.parametrize("gamma", [0.0, 0.7, 2.0])
def test_sigmoid_soft_targets_and_label_smoothing(gamma):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 3, 6, generator=g) * 2
    t = torch.rand(4, 3, 6, generator=g)
    for ls in (0.0, 0.1):
        out = fk.sigmoid_focal_loss(x, t, gamma=gamma, label_smoothing=ls, reduction="none")
        _close(out, R.sigmoid_focal_loss(x, t, gamma=gamma, label_smoothing=ls, reduction="none"))


@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3, 5), (3, 4, 7)])
@pytest.mark.parametrize("ignore_index", [None, -1])
def test_sigmoid_class_indices_background_and_ignore(shape, ignore_index):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(*shape, generator=g) * 2
    c = shape[1]
    y = torch.randint(0, c + 1, shape[:1] + shape[2:], generator=g)  # c = background
    if ignore_index is not None:
        y.view(-1)[::3] = ignore_index
    for reduction in ("none", "mean", "sum"):
        out = fk.sigmoid_focal_loss(x, y, ignore_index=ignore_index, reduction=reduction)
        _close(out, R.sigmoid_focal_loss(x, y, ignore_index=ignore_index, reduction=reduction))
    # class indices are the one-hot of the same-shape form
    onehot = F.one_hot(y.clamp(0, c), c + 1)[..., :c].movedim(-1, 1).float()
    if ignore_index is None:
        _close(fk.sigmoid_focal_loss(x, y, reduction="sum"), fk.sigmoid_focal_loss(x, onehot, reduction="sum").double())


def test_sigmoid_integer_and_bool_masks_are_labels():
    x = torch.randn(3, 1, 4, 4)
    m = torch.rand(3, 1, 4, 4) > 0.5
    expected = fk.sigmoid_focal_loss(x, m.float())
    _close(fk.sigmoid_focal_loss(x, m), expected.double())
    _close(fk.sigmoid_focal_loss(x, m.long()), expected.double())


def test_sigmoid_ignore_index_on_same_shape_targets():
    x = torch.randn(5, 3)
    t = (torch.rand(5, 3) > 0.5).float()
    t[0] = -1
    out = fk.sigmoid_focal_loss(x, t, ignore_index=-1)
    _close(out, R.sigmoid_focal_loss(x, t, ignore_index=-1))
    assert fk.sigmoid_focal_loss(x, t, ignore_index=-1, reduction="none")[0].abs().sum() == 0


def test_sigmoid_per_class_alpha_dense_and_2d():
    x = torch.randn(2, 3, 4, 4)
    y = torch.randint(0, 4, (2, 4, 4))
    a = torch.tensor([0.1, 0.5, 0.9])
    _close(fk.sigmoid_focal_loss(x, y, alpha=a), R.sigmoid_focal_loss(x, y, alpha=a))
    x2, t2 = torch.randn(5, 3), torch.rand(5, 3)
    _close(fk.sigmoid_focal_loss(x2, t2, alpha=a), R.sigmoid_focal_loss(x2, t2, alpha=a))


def test_sigmoid_weight_and_normalizer():
    x = torch.randn(6, 4)
    t = (torch.rand(6, 4) > 0.8).float()
    w = torch.rand(6, 1)
    _close(fk.sigmoid_focal_loss(x, t, weight=w), R.sigmoid_focal_loss(x, t, weight=w))
    _close(fk.sigmoid_focal_loss(x, t, normalizer=3.0), R.sigmoid_focal_loss(x, t, normalizer=3.0))
    n = torch.tensor(0.0)  # 0 is treated as 1
    _close(fk.sigmoid_focal_loss(x, t, normalizer=n), R.sigmoid_focal_loss(x, t, reduction="sum"))
    # mean divides by the count of non-ignored elements, not by the weights
    _close(
        fk.sigmoid_focal_loss(x, t, weight=w, reduction="mean") * x.numel(),
        fk.sigmoid_focal_loss(x, t, weight=w, reduction="sum").double(),
    )


@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_gradients_match_the_float64_reference(gamma):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5, 4, 3, generator=g) * 4
    y = torch.randint(0, 5, (5, 3), generator=g)
    t = torch.rand(5, 4, 3, generator=g)
    for targets, kw in ((y, {"ignore_index": 0}), (t, {"label_smoothing": 0.2})):
        def fn(z, targets=targets, kw=kw):
            return fk.sigmoid_focal_loss(z, targets, gamma=gamma, **kw)
        _close(_grad(fn, x), R.sigmoid_focal_grad(x, targets, gamma=gamma, **kw), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("alpha", [None, 0.25])
def test_sigmoid_gamma_zero_is_bce_with_logits(alpha):
    x = torch.randn(8, 5, dtype=torch.float64)
    t = torch.rand(8, 5, dtype=torch.float64)
    w = torch.rand(8, 5, dtype=torch.float64)
    out = fk.sigmoid_focal_loss(x, t, alpha=alpha, gamma=0.0, weight=w, reduction="none")
    a_t = 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)
    ref = a_t * F.binary_cross_entropy_with_logits(x, t, weight=w, reduction="none")
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    if alpha is None:
        torch.testing.assert_close(
            fk.sigmoid_focal_loss(x, t, alpha=None, gamma=0.0), F.binary_cross_entropy_with_logits(x, t)
        )
        torch.testing.assert_close(
            _grad(lambda z: fk.sigmoid_focal_loss(z, t, alpha=None, gamma=0.0), x),
            _grad(lambda z: F.binary_cross_entropy_with_logits(z, t), x),
        )


def test_paper_modulating_factor_values():
    """Lin et al.: with gamma = 2, p_t = 0.9 gives 100x and p_t ~ 0.968 gives ~1000x lower loss than CE."""
    for p_t, factor in ((0.9, 100.0), (0.968, 1000.0)):
        x = torch.tensor([math.log(p_t / (1 - p_t))], dtype=torch.float64)
        t = torch.ones(1, dtype=torch.float64)
        ce = fk.sigmoid_focal_loss(x, t, alpha=None, gamma=0.0, reduction="sum")
        fl = fk.sigmoid_focal_loss(x, t, alpha=None, gamma=2.0, reduction="sum")
        assert float(ce / fl) == pytest.approx(factor, rel=0.03)


# ---------------------------------------------------------------- softmax


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [None, [0.2, 1.0, 3.0, 0.5]])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_softmax_hard_labels_match_reference(gamma, alpha, reduction):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(9, 4, generator=g) * 3
    y = torch.randint(0, 4, (9,), generator=g)
    y[2] = -100
    out = fk.softmax_focal_loss(x, y, alpha=alpha, gamma=gamma, reduction=reduction)
    _close(out, R.softmax_focal_loss(x, y, alpha=alpha, gamma=gamma, reduction=reduction))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_softmax_segmentation_layout_ignore_and_smoothing(gamma):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 5, 6, 7, generator=g) * 2
    y = torch.randint(0, 5, (2, 6, 7), generator=g)
    y[:, :2] = 255
    a = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.1])
    for ls in (0.0, 0.1):
        for reduction in ("none", "mean"):
            out = fk.softmax_focal_loss(
                x, y, gamma=gamma, alpha=a, ignore_index=255, label_smoothing=ls, reduction=reduction
            )
            ref = R.softmax_focal_loss(
                x, y, gamma=gamma, alpha=a, ignore_index=255, label_smoothing=ls, reduction=reduction
            )
            _close(out, ref)
    none = fk.softmax_focal_loss(x, y, ignore_index=255, reduction="none")
    assert none.shape == y.shape and none[:, :2].abs().sum() == 0


def test_softmax_probability_targets_reduce_to_hard_form():
    x = torch.randn(6, 3, 4)
    y = torch.randint(0, 3, (6, 4))
    probs = F.one_hot(y, 3).movedim(-1, 1).float()
    a = [1.0, 2.0, 0.5]
    torch.testing.assert_close(
        fk.softmax_focal_loss(x, probs, alpha=a, reduction="none"),
        fk.softmax_focal_loss(x, y, alpha=a, reduction="none"),
        rtol=1e-5, atol=1e-6,
    )
    soft = torch.softmax(torch.randn(6, 3, 4), 1)
    _close(fk.softmax_focal_loss(x, soft, alpha=a), R.softmax_focal_loss(x, soft, alpha=a))


def test_softmax_weight_and_normalizer():
    x = torch.randn(5, 3, 4)
    y = torch.randint(0, 3, (5, 4))
    w = torch.rand(5, 4)
    _close(fk.softmax_focal_loss(x, y, weight=w), R.softmax_focal_loss(x, y, weight=w))
    _close(fk.softmax_focal_loss(x, y, normalizer=7), R.softmax_focal_loss(x, y, normalizer=7))


@pytest.mark.parametrize("gamma", GAMMAS)
def test_softmax_gradients_match_the_float64_reference(gamma):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 4, 5, 2, generator=g) * 4
    y = torch.randint(0, 4, (3, 5, 2), generator=g)
    y[0, 0] = -100
    a = torch.tensor([0.3, 1.0, 2.0, 0.7])
    for kw in ({}, {"alpha": a}, {"label_smoothing": 0.1, "alpha": a}):
        def fn(z, kw=kw):
            return fk.softmax_focal_loss(z, y, gamma=gamma, **kw)
        _close(_grad(fn, x), R.softmax_focal_grad(x, y, gamma=gamma, **kw), rtol=1e-4, atol=1e-7)


def test_softmax_gamma_zero_is_cross_entropy():
    x = torch.randn(10, 4, 3, dtype=torch.float64)
    y = torch.randint(0, 4, (10, 3))
    y[0] = -100
    a = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64)
    for ls in (0.0, 0.2):
        for reduction in ("none", "sum"):
            torch.testing.assert_close(
                fk.softmax_focal_loss(x, y, alpha=a, gamma=0.0, label_smoothing=ls, reduction=reduction),
                F.cross_entropy(x, y, weight=a, label_smoothing=ls, reduction=reduction),
            )
        torch.testing.assert_close(
            fk.softmax_focal_loss(x, y, gamma=0.0, label_smoothing=ls),
            F.cross_entropy(x, y, label_smoothing=ls),
        )
        torch.testing.assert_close(
            _grad(lambda z: fk.softmax_focal_loss(z, y, gamma=0.0, label_smoothing=ls), x),
            _grad(lambda z: F.cross_entropy(z, y, label_smoothing=ls), x),
        )
    probs = torch.softmax(torch.randn(10, 4, 3, dtype=torch.float64), 1)
    torch.testing.assert_close(fk.softmax_focal_loss(x, probs, gamma=0.0), F.cross_entropy(x, probs))


# ---------------------------------------------------------------- gradcheck, reduction="none" backward


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_gradcheck_float64(gamma):
    g = torch.Generator().manual_seed(8)
    x = torch.randn(4, 3, 5, dtype=torch.float64, generator=g, requires_grad=True)
    t = torch.rand(4, 3, 5, dtype=torch.float64, generator=g)
    y_sig = torch.randint(0, 4, (4, 5), generator=g)
    y_sm = torch.randint(0, 3, (4, 5), generator=g)
    a = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    checks = [
        lambda z: fk.sigmoid_focal_loss(z, t, gamma=gamma),
        lambda z: fk.sigmoid_focal_loss(z, y_sig, gamma=gamma, reduction="none"),
        lambda z: fk.softmax_focal_loss(z, y_sm, gamma=gamma, alpha=a),
        lambda z: fk.softmax_focal_loss(z, y_sm, gamma=gamma, label_smoothing=0.1, reduction="none"),
    ]
    for fn in checks:
        assert torch.autograd.gradcheck(fn, (x,))


def test_reduction_none_backward_with_nonuniform_upstream_gradient():
    x = torch.randn(3, 4, 5)
    y = torch.randint(0, 4, (3, 5))
    up = torch.rand(3, 5)
    up4 = torch.rand(3, 4, 5)

    def sm(z):
        return (fk.softmax_focal_loss(z, y, reduction="none") * up).sum()

    def sg(z):
        return (fk.sigmoid_focal_loss(z, y, reduction="none") * up4).sum()

    _close(_grad(sm, x), R.softmax_focal_grad(x, y, reduction="none", grad_output=up), rtol=1e-4, atol=1e-7)
    _close(_grad(sg, x), R.sigmoid_focal_grad(x, y, reduction="none", grad_output=up4), rtol=1e-4, atol=1e-7)


def test_list_alpha_keeps_float64_precision():
    """Issue 10: a Python-list alpha is converted to the logits' compute dtype, not float32."""
    g = torch.Generator().manual_seed(10)
    x = torch.randn(64, 5, dtype=torch.float64, generator=g) * 3
    y = torch.randint(0, 5, (64,), generator=g)
    a = [0.3, 1, 2, 0.5, 1.5]
    out = fk.softmax_focal_loss(x, y, alpha=a, gamma=0, reduction="sum")
    ref = F.cross_entropy(x, y, weight=torch.tensor(a, dtype=torch.float64), reduction="sum")
    torch.testing.assert_close(out, ref, rtol=1e-14, atol=1e-13)
