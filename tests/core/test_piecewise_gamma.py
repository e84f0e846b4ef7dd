"""Sample-dependent gamma (FLSD-53, Mukhoti et al., NeurIPS 2020) in both focal losses, every backend.

A PiecewiseGamma loss must equal, element by element, the fixed-gamma loss of the interval its
p_t falls in, and so must its gradient (gamma is a constant for the gradient, as in the paper's
code). Also: the float64 reference, the value at a threshold, Poly-1 with it, modules, extremes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import focalkit as fk
from focalkit.testing import reference as R
from loss_helpers import grad as _grad

pytestmark = pytest.mark.usefixtures("backend")


def _close(actual: torch.Tensor, expected, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    np.testing.assert_allclose(actual.detach().double().cpu().numpy(), np.asarray(expected), rtol=rtol, atol=atol)


def test_flsd53_is_the_paper_schedule():
    assert fk.FLSD53 == fk.PiecewiseGamma([0.2], [5.0, 3.0])
    assert fk.FLSD53.at(0.1) == 5.0 and fk.FLSD53.at(0.2) == 3.0 and fk.FLSD53.max == 5.0


@pytest.mark.parametrize("epsilon", [0.0, 1.0])
def test_sigmoid_equals_fixed_gamma_of_each_elements_interval(epsilon):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 6, generator=g) * 3
    t = (torch.rand(8, 6, generator=g) > 0.5).float()
    pg = fk.PiecewiseGamma([0.2, 0.6], [5.0, 3.0, 1.0])
    p = torch.sigmoid(x.double())
    p_t = p * t + (1 - p) * (1 - t)
    kw = dict(alpha=0.25, epsilon=epsilon, reduction="none")
    got = fk.sigmoid_focal_loss(x, t, gamma=pg, **kw)
    got_grad = _grad(lambda z: fk.sigmoid_focal_loss(z, t, gamma=pg, **kw), x)
    want = torch.zeros_like(got)
    want_grad = torch.zeros_like(got_grad)
    for lo, hi, gamma in [(0.0, 0.2, 5.0), (0.2, 0.6, 3.0), (0.6, 1.01, 1.0)]:
        m = (p_t >= lo) & (p_t < hi)
        assert m.any()
        want[m] = fk.sigmoid_focal_loss(x, t, gamma=gamma, **kw)[m]
        want_grad[m] = _grad(lambda z: fk.sigmoid_focal_loss(z, t, gamma=gamma, **kw), x)[m]  # noqa: B023
    _close(got, want)
    _close(got_grad, want_grad)
    _close(got, R.sigmoid_focal_loss(x, t, gamma=pg, **kw))


def test_softmax_hard_labels_use_gamma_at_p_y():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 4, generator=g) * 2
    y = torch.randint(0, 4, (40,), generator=g)
    p_y = torch.softmax(x.double(), 1).gather(1, y[:, None]).squeeze(1)
    for eps in (0.0, -0.5):
        got = fk.softmax_focal_loss(x, y, gamma=fk.FLSD53, epsilon=eps, reduction="none")
        got_grad = _grad(lambda z: fk.softmax_focal_loss(z, y, gamma=fk.FLSD53, epsilon=eps, reduction="none"), x)  # noqa: B023
        five = fk.softmax_focal_loss(x, y, gamma=5.0, epsilon=eps, reduction="none")
        three = fk.softmax_focal_loss(x, y, gamma=3.0, epsilon=eps, reduction="none")
        low = p_y < 0.2
        assert low.any() and (~low).any()
        _close(got, torch.where(low, five, three))
        g5 = _grad(lambda z: fk.softmax_focal_loss(z, y, gamma=5.0, epsilon=eps, reduction="none"), x)  # noqa: B023
        g3 = _grad(lambda z: fk.softmax_focal_loss(z, y, gamma=3.0, epsilon=eps, reduction="none"), x)  # noqa: B023
        _close(got_grad, torch.where(low[:, None], g5, g3))


def test_softmax_soft_targets_and_smoothing_match_reference():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 5, 2, generator=g) * 2
    t = torch.softmax(torch.randn(6, 5, 2, generator=g) * 3, 1)
    pg = fk.PiecewiseGamma([0.3], [4.0, 1.5])
    for eps in (0.0, 2.0):
        kw = dict(gamma=pg, epsilon=eps, reduction="sum")
        _close(fk.softmax_focal_loss(x, t, **kw), R.softmax_focal_loss(x, t, **kw))
        y = torch.randint(0, 5, (6, 2), generator=g)
        kw = dict(gamma=pg, epsilon=eps, label_smoothing=0.1, alpha=[1, 2, 3, 4, 5])
        _close(fk.softmax_focal_loss(x, y, **kw), R.softmax_focal_loss(x, y, **kw))


def test_reference_gradient_away_from_thresholds():
    # finite differences are valid where no step crosses a threshold
    x = torch.tensor([[-2.0, 0.4, 1.7], [3.0, -0.9, 0.1]])
    t = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    kw = dict(gamma=fk.FLSD53, epsilon=0.5, alpha=0.25, reduction="mean")
    _close(_grad(lambda z: fk.sigmoid_focal_loss(z, t, **kw), x), R.sigmoid_focal_grad(x, t, **kw), rtol=1e-4)
    y = torch.tensor([0, 2])
    kw = dict(gamma=fk.FLSD53, epsilon=0.5)
    _close(_grad(lambda z: fk.softmax_focal_loss(z, y, **kw), x), R.softmax_focal_grad(x, y, **kw), rtol=1e-4)


def test_at_a_threshold_the_upper_value_applies():
    # x = 0: p = p_t = 0.5 exactly in every dtype; PiecewiseGamma takes values[i] at p_t >= thresholds[i-1]
    pg = fk.PiecewiseGamma([0.5], [1.0, 3.0])
    x = torch.zeros(2, 1)
    t = torch.tensor([[1.0], [0.0]])
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        got = fk.sigmoid_focal_loss(x.to(dtype), t.to(dtype), alpha=None, gamma=pg, reduction="none")
        want = fk.sigmoid_focal_loss(x.to(dtype), t.to(dtype), alpha=None, gamma=3.0, reduction="none")
        assert torch.equal(got, want) and torch.isfinite(got).all()
    # softmax: two equal logits give p_y = 0.5
    got = fk.softmax_focal_loss(torch.zeros(1, 2), torch.tensor([1]), gamma=pg)
    assert got.item() == pytest.approx(0.5**3 * np.log(2.0), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_extremes_finite(dtype):
    x = torch.tensor([[1e4, -1e4, 0.0, 30.0], [-1e4, 1e4, -30.0, 5.0]], dtype=dtype)
    t = torch.tensor([[1.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 1.0]], dtype=dtype)
    pg = fk.PiecewiseGamma([0.2, 0.9], [5.0, 0.5, 0.25])  # gamma < 1 where p_t -> 1
    for eps in (0.0, -1.0):
        loss = fk.sigmoid_focal_loss(x, t, gamma=pg, epsilon=eps, reduction="none")
        grad = _grad(lambda z: fk.sigmoid_focal_loss(z, t, gamma=pg, epsilon=eps), x)  # noqa: B023
        assert torch.isfinite(loss.float()).all() and torch.isfinite(grad.float()).all()
        y = torch.tensor([0, 1])
        loss = fk.softmax_focal_loss(x, y, gamma=pg, epsilon=eps, reduction="none")
        grad = _grad(lambda z: fk.softmax_focal_loss(z, y, gamma=pg, epsilon=eps), x)  # noqa: B023
        assert torch.isfinite(loss.float()).all() and torch.isfinite(grad.float()).all()


def test_gradcheck_and_gradgradcheck_on_every_path(backend):
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(5, 3, generator=g, dtype=torch.float64) * 2).requires_grad_()
    t = (torch.rand(5, 3, generator=g) > 0.5).double()
    y = torch.tensor([0, 1, 2, 1, 0])
    for fn in (
        lambda z: fk.sigmoid_focal_loss(z, t, gamma=fk.FLSD53, epsilon=1.0, reduction="sum"),
        lambda z: fk.softmax_focal_loss(z, y, gamma=fk.FLSD53, epsilon=1.0, reduction="sum"),
    ):
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))


def test_bad_gamma_values_name_the_argument():
    x = torch.randn(3, 2)
    with pytest.raises(TypeError, match="gamma"):
        fk.sigmoid_focal_loss(x, torch.zeros(3, 2), gamma=[0.2, 5.0])
    with pytest.raises(ValueError, match="thresholds"):
        fk.PiecewiseGamma([0.2, 0.1], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="values"):
        fk.PiecewiseGamma([0.2], [1.0])


def test_modules_take_a_piecewise_gamma():
    x = torch.randn(6, 3)
    y = torch.randint(0, 3, (6,))
    crit = fk.SoftmaxFocalLoss(gamma=fk.FLSD53, epsilon=1.0)
    assert crit.gamma is fk.FLSD53 and "PiecewiseGamma(thresholds=[0.2], values=[5.0, 3.0])" in repr(crit)
    _close(crit(x, y), fk.softmax_focal_loss(x, y, gamma=fk.FLSD53, epsilon=1.0))
    crit = fk.SigmoidFocalLoss(gamma=fk.FLSD53)
    t = (torch.rand(6, 3) > 0.5).float()
    _close(crit(x, t), fk.sigmoid_focal_loss(x, t, gamma=fk.FLSD53))
    restored = fk.SigmoidFocalLoss(gamma=fk.FLSD53)
    restored.load_state_dict(crit.state_dict())
    _close(restored(x, t), crit(x, t))


def test_piecewise_calls_reach_the_dispatcher_as_piecewise(monkeypatch):
    from focalkit import backends

    seen = []
    real = backends.resolve
    monkeypatch.setattr(backends, "resolve", lambda info: seen.append(info) or real(info))
    x = torch.randn(4, 3)
    fk.softmax_focal_loss(x, torch.tensor([0, 1, 2, 0]), gamma=fk.FLSD53, epsilon=0.5)
    fk.sigmoid_focal_loss(x, torch.zeros(4, 3), gamma=2.0)
    assert seen[0].piecewise and seen[0].variant is not None and seen[0].variant.epsilon == 0.5
    assert not seen[1].piecewise and seen[1].variant is None
