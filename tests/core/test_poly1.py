"""Poly-1 (Leng et al., ICLR 2022): ``epsilon`` on both focal losses, on every backend.

The paper's Poly-1 cross-entropy is CE + epsilon (1 - p_t); its Poly-1 focal loss is
FL + epsilon (1 - p_t)^(gamma + 1). The checks below write those formulas again here from PyTorch's
own float64 cross-entropy (independent of focalkit's paths and of its NumPy reference), compare with
the float64 reference and its finite-difference gradient, and cover alpha/weight (alpha multiplies
only the focal term, weight both), ignore_index, reductions, soft targets, extremes and bad input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import focalkit as fk
from focalkit.testing import reference as R
from loss_helpers import grad as _grad

pytestmark = pytest.mark.usefixtures("backend")

EPSILONS = [-1.0, -0.5, 1.0, 3.0]


def _close(actual: torch.Tensor, expected, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    np.testing.assert_allclose(actual.detach().double().cpu().numpy(), np.asarray(expected), rtol=rtol, atol=atol)


def _data(seed: int, shape=(6, 5)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g) * 3
    t = (torch.rand(*shape, generator=g) > 0.6).float()
    return x, t


# ---------------------------------------------------------------- the paper's formulas, written here


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_sigmoid_poly1_ce_is_bce_plus_epsilon_one_minus_pt(epsilon):
    x, t = _data(0)
    xd, td = x.double(), t.double()
    p = torch.sigmoid(xd)
    p_t = p * td + (1 - p) * (1 - td)
    want = F.binary_cross_entropy_with_logits(xd, td, reduction="none") + epsilon * (1 - p_t)
    got = fk.sigmoid_focal_loss(x, t, alpha=None, gamma=0.0, epsilon=epsilon, reduction="none")
    _close(got, want)


@pytest.mark.parametrize("epsilon", EPSILONS)
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_sigmoid_poly1_focal_is_focal_plus_epsilon_power(epsilon, gamma):
    x, t = _data(1)
    xd, td = x.double(), t.double()
    p = torch.sigmoid(xd)
    p_t = p * td + (1 - p) * (1 - td)
    a_t = 0.25 * td + 0.75 * (1 - td)
    fl = a_t * (1 - p_t) ** gamma * F.binary_cross_entropy_with_logits(xd, td, reduction="none")
    w = torch.rand(6, 5, generator=torch.Generator().manual_seed(9))
    want = (fl + epsilon * (1 - p_t) ** (gamma + 1)) * w.double()  # alpha on the focal term, weight on both
    got = fk.sigmoid_focal_loss(x, t, alpha=0.25, gamma=gamma, epsilon=epsilon, weight=w, reduction="none")
    _close(got, want)


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_softmax_poly1_ce_is_cross_entropy_plus_epsilon_one_minus_py(epsilon):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(8, 4, generator=g) * 2
    y = torch.randint(0, 4, (8,), generator=g)
    xd = x.double()
    p_y = xd.softmax(1).gather(1, y[:, None]).squeeze(1)
    want = F.cross_entropy(xd, y, reduction="none") + epsilon * (1 - p_y)
    _close(fk.softmax_focal_loss(x, y, gamma=0.0, epsilon=epsilon, reduction="none"), want)
    # mean: over the positions
    _close(fk.softmax_focal_loss(x, y, gamma=0.0, epsilon=epsilon), want.mean())


def test_softmax_poly1_soft_targets_use_sum_of_t_times_p():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 3, generator=g)
    t = torch.rand(5, 3, generator=g)
    t = t / t.sum(1, keepdim=True)
    xd = x.double()
    p = xd.softmax(1)
    p_t = (t.double() * p).sum(1)
    fl = -(t.double() * (1 - p) ** 2 * xd.log_softmax(1)).sum(1)
    want = fl + 2.0 * (1 - p_t) ** 3
    _close(fk.softmax_focal_loss(x, t, gamma=2.0, epsilon=2.0, reduction="none"), want)


# ---------------------------------------------------------------- the float64 reference, loss and gradient


@pytest.mark.parametrize("epsilon", EPSILONS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_sigmoid_matches_reference_loss_and_grad(epsilon, gamma, reduction):
    x, t = _data(4)
    kw = dict(alpha=0.25, gamma=gamma, epsilon=epsilon, reduction=reduction)
    _close(fk.sigmoid_focal_loss(x, t, **kw), R.sigmoid_focal_loss(x, t, **kw))
    grad = _grad(lambda z: fk.sigmoid_focal_loss(z, t, **kw), x)
    _close(grad, R.sigmoid_focal_grad(x, t, **kw), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("ignore_index", [None, -1])
def test_sigmoid_class_indices_ignore_and_normalizer(ignore_index):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 4, 3, generator=g)
    y = torch.randint(0, 5, (6, 3), generator=g)  # 4 = background
    if ignore_index is not None:
        y[0, :] = ignore_index
    kw = dict(alpha=0.25, gamma=2.0, epsilon=1.5, ignore_index=ignore_index, normalizer=7.0)
    _close(fk.sigmoid_focal_loss(x, y, **kw), R.sigmoid_focal_loss(x, y, **kw))
    _close(_grad(lambda z: fk.sigmoid_focal_loss(z, y, **kw), x), R.sigmoid_focal_grad(x, y, **kw), rtol=1e-4)
    none = fk.sigmoid_focal_loss(x, y, alpha=0.25, gamma=2.0, epsilon=1.5, ignore_index=ignore_index, reduction="none")
    if ignore_index is not None:
        assert none[0].abs().max().item() == 0.0


@pytest.mark.parametrize("epsilon", EPSILONS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_softmax_matches_reference_loss_and_grad(epsilon, gamma, smoothing):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(5, 4, 3, generator=g) * 2
    y = torch.randint(0, 4, (5, 3), generator=g)
    y[0, 0] = -100
    alpha = [0.1, 0.2, 0.3, 0.4]
    w = torch.rand(5, 3, generator=g)
    kw = dict(alpha=alpha, gamma=gamma, epsilon=epsilon, weight=w, label_smoothing=smoothing)
    _close(fk.softmax_focal_loss(x, y, **kw), R.softmax_focal_loss(x, y, **kw))
    _close(_grad(lambda z: fk.softmax_focal_loss(z, y, **kw), x), R.softmax_focal_grad(x, y, **kw), rtol=1e-4)


def test_softmax_soft_targets_match_reference_grad():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(6, 5, generator=g)
    t = torch.softmax(torch.randn(6, 5, generator=g) * 2, 1)
    kw = dict(gamma=1.5, epsilon=-0.7, reduction="sum")
    _close(fk.softmax_focal_loss(x, t, **kw), R.softmax_focal_loss(x, t, **kw))
    _close(_grad(lambda z: fk.softmax_focal_loss(z, t, **kw), x), R.softmax_focal_grad(x, t, **kw), rtol=1e-4)


def test_epsilon_zero_is_the_plain_loss_bit_for_bit():
    x, t = _data(8)
    assert torch.equal(fk.sigmoid_focal_loss(x, t, epsilon=0.0), fk.sigmoid_focal_loss(x, t))
    y = torch.randint(0, 5, (6,))
    assert torch.equal(fk.softmax_focal_loss(x, y, epsilon=0.0), fk.softmax_focal_loss(x, y))


# ---------------------------------------------------------------- extremes


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("gamma", [0.0, 0.3, 2.0])
def test_extreme_logits_finite_and_epsilon_minus_one_non_negative(dtype, gamma):
    x = torch.tensor([[1e4, -1e4, 0.0, 30.0], [-1e4, 1e4, -30.0, 5.0]], dtype=dtype)
    t = torch.tensor([[1.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 1.0]], dtype=dtype)
    for eps in (-1.0, 2.0):
        loss = fk.sigmoid_focal_loss(x, t, alpha=None, gamma=gamma, epsilon=eps, reduction="none")
        grad = _grad(lambda z: fk.sigmoid_focal_loss(z, t, alpha=None, gamma=gamma, epsilon=eps), x)
        assert torch.isfinite(loss.float()).all() and torch.isfinite(grad.float()).all()
        assert loss.dtype == dtype and grad.dtype == dtype
        if eps == -1.0:  # -log p_t >= 1 - p_t: Poly-1 with epsilon = -1 stays >= 0
            assert loss.float().min().item() >= -1e-6
        y = torch.tensor([0, 1])
        loss = fk.softmax_focal_loss(x, y, gamma=gamma, epsilon=eps, reduction="none")
        grad = _grad(lambda z: fk.softmax_focal_loss(z, y, gamma=gamma, epsilon=eps), x)
        assert torch.isfinite(loss.float()).all() and torch.isfinite(grad.float()).all()


def test_half_precision_matches_float32():
    x, t = _data(10)
    for dtype in (torch.float16, torch.bfloat16):
        got = fk.sigmoid_focal_loss(x.to(dtype), t.to(dtype), epsilon=1.0, reduction="sum")
        want = fk.sigmoid_focal_loss(x.to(dtype).float(), t, epsilon=1.0, reduction="sum")
        assert got.dtype == dtype
        assert got.float().item() == pytest.approx(want.item(), rel=1e-2)


def test_empty_and_all_ignored_give_zero_with_zero_grad():
    x = torch.zeros(0, 3, requires_grad=True)
    loss = fk.sigmoid_focal_loss(x, torch.zeros(0, 3), epsilon=1.0)
    loss.backward()
    assert loss.item() == 0.0 and x.grad is not None and x.grad.shape == (0, 3)
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.full((4,), -100)
    loss = fk.softmax_focal_loss(x, y, epsilon=1.0)
    loss.backward()
    assert loss.item() == 0.0 and x.grad.abs().max().item() == 0.0


# ---------------------------------------------------------------- gradcheck / gradgradcheck


@pytest.mark.parametrize("form", ["sigmoid-hard", "sigmoid-soft", "softmax-hard", "softmax-soft"])
def test_gradcheck_and_gradgradcheck(form, backend):
    g = torch.Generator().manual_seed(11)
    x = (torch.randn(4, 3, generator=g, dtype=torch.float64) * 2).requires_grad_()
    if form == "sigmoid-hard":
        t = (torch.rand(4, 3, generator=g) > 0.5).double()
        fn = lambda z: fk.sigmoid_focal_loss(z, t, gamma=2.0, epsilon=1.5, reduction="sum")  # noqa: E731
    elif form == "sigmoid-soft":
        t = torch.rand(4, 3, generator=g, dtype=torch.float64)
        fn = lambda z: fk.sigmoid_focal_loss(z, t, gamma=1.5, epsilon=-0.5, reduction="sum")  # noqa: E731
    elif form == "softmax-hard":
        t = torch.tensor([0, 2, 1, 2])
        fn = lambda z: fk.softmax_focal_loss(z, t, gamma=2.0, epsilon=1.0, reduction="sum")  # noqa: E731
    else:
        t = torch.softmax(torch.randn(4, 3, generator=g, dtype=torch.float64), 1)
        fn = lambda z: fk.softmax_focal_loss(z, t, gamma=1.5, epsilon=2.0, reduction="sum")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


# ---------------------------------------------------------------- bad input, modules


@pytest.mark.parametrize("bad, exc", [(-1.5, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
                                      ("1", TypeError), (True, TypeError)])
def test_bad_epsilon_names_the_argument(bad, exc):
    x, t = _data(12)
    with pytest.raises(exc, match="epsilon"):
        fk.sigmoid_focal_loss(x, t, epsilon=bad)
    with pytest.raises(exc, match="epsilon"):
        fk.softmax_focal_loss(x, torch.zeros(6, dtype=torch.long), epsilon=bad)
    with pytest.raises(exc, match="epsilon"):
        fk.SigmoidFocalLoss(epsilon=bad)
    with pytest.raises(exc, match="epsilon"):
        fk.SoftmaxFocalLoss(epsilon=bad)


def test_modules_carry_epsilon():
    x, t = _data(13)
    crit = fk.SigmoidFocalLoss(gamma=2.0, epsilon=1.0)
    assert crit.epsilon == 1.0 and "epsilon=1.0" in repr(crit)
    _close(crit(x, t), fk.sigmoid_focal_loss(x, t, gamma=2.0, epsilon=1.0))
    crit = fk.SoftmaxFocalLoss(alpha=[1.0, 2.0, 1.0, 1.0, 0.5], epsilon=-0.5)
    y = torch.randint(0, 5, (6,))
    _close(crit(x, y), fk.softmax_focal_loss(x, y, alpha=[1.0, 2.0, 1.0, 1.0, 0.5], epsilon=-0.5))
    assert "epsilon=-0.5" in repr(crit)
    restored = fk.SoftmaxFocalLoss(alpha=[1.0] * 5, epsilon=-0.5)
    restored.load_state_dict(crit.state_dict())
    _close(restored(x, y), crit(x, y))
    assert fk.FocalLoss("binary", epsilon=2.0).loss.epsilon == 2.0
