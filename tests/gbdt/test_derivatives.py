"""Gradient and Hessian of focal loss w.r.t. the margin, against the float64 reference.

The reference (:mod:`focalkit.testing.reference`) computes the loss straight from the paper's
formula; its derivatives here are finite differences of it, independent of the closed forms in
:mod:`focalkit.gbdt.derivatives`.
"""

from __future__ import annotations

import numpy as np
import pytest

from focalkit.gbdt import (
    HESSIANS,
    binary_focal_grad_hess,
    binary_focal_loss,
    prior_init_score,
    softmax_focal_grad_hess,
    softmax_focal_hessian_matrix,
    softmax_focal_loss,
)
from focalkit.gbdt.derivatives import softmax_grad_and_matrix
from focalkit.testing import reference as R

GAMMAS = [0.0, 0.25, 0.5, 1.0, 2.0, 3.7, 5.0]
POSITIVE = [h for h in HESSIANS if h != "exact"]
# p_t from 1e-6 to 1 - 1e-6, denser at both ends
P_T = np.concatenate([np.logspace(-6, np.log10(0.5), 30), 1.0 - np.logspace(np.log10(0.5), -6, 30)[1:]])


def _fd(f, x, h):
    """Fourth-order central difference."""
    return (8.0 * (f(x + h) - f(x - h)) - (f(x + 2 * h) - f(x - 2 * h))) / (12.0 * h)


def _fd2(f, x, h):
    """Fourth-order central second difference."""
    return (-f(x + 2 * h) + 16.0 * f(x + h) - 30.0 * f(x) + 16.0 * f(x - h) - f(x - 2 * h)) / (12.0 * h * h)


def _binary_case(label: float):
    logit = np.log(P_T) - np.log1p(-P_T)  # p_t = sigmoid(+-margin)
    x = logit if label == 1 else -logit
    return x, np.full_like(x, label)


# ----------------------------------------------------------------------------------- binary
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [None, 0.25, 0.9])
@pytest.mark.parametrize("label", [0.0, 1.0])
def test_binary_exact_grad_and_hessian_match_finite_differences_of_the_reference(gamma, alpha, label):
    x, y = _binary_case(label)
    kw = {"alpha": alpha, "gamma": gamma, "reduction": "none"}
    g, h = binary_focal_grad_hess(x, y, gamma=gamma, alpha=alpha, hessian="exact")
    g_ref = R.sigmoid_focal_grad(x, y, **kw)
    steps = 1e-3 * np.maximum(1.0, np.abs(x))
    h_ref = _fd(lambda z: R.sigmoid_focal_grad(z, y, **kw), x, steps)
    scale = np.abs(g) + np.abs(h)  # per example: the Hessian crosses 0, so no pure relative error
    assert np.all(np.abs(g - g_ref) <= 1e-6 * scale)
    assert np.all(np.abs(h - h_ref) <= 1e-5 * scale)
    # and the analytic Hessian is the derivative of the analytic gradient, tightly
    h_own = _fd(lambda z: binary_focal_grad_hess(z, y, gamma=gamma, alpha=alpha)[0], x, steps)
    assert np.all(np.abs(h - h_own) <= 5e-6 * scale)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_binary_soft_labels_match_the_reference(gamma):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 4, 200)
    y = rng.uniform(0, 1, 200)
    kw = {"alpha": 0.3, "gamma": gamma, "reduction": "none"}
    g, h = binary_focal_grad_hess(x, y, gamma=gamma, alpha=0.3, hessian="exact")
    h_ref = _fd(lambda z: R.sigmoid_focal_grad(z, y, **kw), x, 1e-3 * np.maximum(1.0, np.abs(x)))
    scale = np.abs(g) + np.abs(h)
    np.testing.assert_array_less(np.abs(g - R.sigmoid_focal_grad(x, y, **kw)), 1e-6 * scale + 1e-300)
    np.testing.assert_array_less(np.abs(h - h_ref), 1e-5 * scale + 1e-300)
    np.testing.assert_allclose(binary_focal_loss(x, y, gamma=gamma, alpha=0.3),
                               R.sigmoid_focal_loss(x, y, **kw), rtol=1e-9)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_binary_loss_equals_the_reference(gamma):
    for label in (0.0, 1.0):
        x, y = _binary_case(label)
        np.testing.assert_allclose(binary_focal_loss(x, y, gamma=gamma, alpha=0.25),
                                   R.sigmoid_focal_loss(x, y, alpha=0.25, gamma=gamma, reduction="none"), rtol=1e-8)


def test_the_exact_binary_hessian_is_negative_for_badly_misclassified_examples_only():
    x, y = _binary_case(1.0)
    for gamma in (0.5, 1.0, 2.0, 5.0):
        h = binary_focal_grad_hess(x, y, gamma=gamma, hessian="exact")[1]
        neg = P_T[h < 0]
        assert neg.size and neg.max() < 0.1, (gamma, neg.max())  # only the hard end
        assert (h[P_T > 0.1] > 0).all()
    # gamma=2: the sign change sits near p_t = 0.05 (between 0.02 and 0.08)
    h = binary_focal_grad_hess(x, y, gamma=2.0, hessian="exact")[1]
    assert 0.02 < P_T[h < 0].max() < 0.08


# ----------------------------------------------------------------------------------- softmax
def _softmax_case(k: int, seed: int):
    """Rows with the label's probability on the P_T grid, other margins random, rows centred."""
    rng = np.random.default_rng(seed)
    n = len(P_T)
    y = rng.integers(0, k, n)
    x = rng.normal(size=(n, k))
    others = np.where(np.eye(k, dtype=bool)[y], -np.inf, x)
    x[np.arange(n), y] = np.log(P_T) - np.log1p(-P_T) + np.logaddexp.reduce(others, axis=1)
    x -= (x.max(1, keepdims=True) + x.min(1, keepdims=True)) / 2  # softmax is shift invariant
    return x, y, rng.uniform(0.1, 2.0, k)


@pytest.mark.parametrize("k", [2, 3, 10, 100])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_softmax_exact_grad_and_hessian_match_finite_differences_of_the_reference(k, gamma):
    x, y, alpha = _softmax_case(k, seed=k)
    kw = {"alpha": alpha, "gamma": gamma, "reduction": "none"}
    g, h = softmax_focal_grad_hess(x, y, gamma=gamma, alpha=alpha, hessian="exact")
    scale = np.abs(g).max(1) + np.abs(h).max(1)  # per row
    g_ref = R.softmax_focal_grad(x, y, **kw)
    assert np.all(np.abs(g - g_ref).max(1) <= 1e-6 * scale)
    rows = np.arange(len(y))
    # the diagonal Hessian on the label's column and two others, by second differences of the loss
    # (absolute steps: the margins are centred). The reference's own rounding limits this to ~1e-4.
    for col in (y, np.zeros_like(y), np.full_like(y, k - 1)):
        def loss_along(v, col=col):
            z = x.copy()
            z[rows, col] = v
            return R.softmax_focal_loss(z, y, **kw)

        h_ref = _fd2(loss_along, x[rows, col], 3e-3)
        assert np.all(np.abs(h[rows, col] - h_ref) <= 5e-4 * scale), (k, gamma)
    np.testing.assert_allclose(softmax_focal_loss(x, y, gamma=gamma, alpha=alpha),
                               R.softmax_focal_loss(x, y, **kw), rtol=1e-7)


@pytest.mark.parametrize("hessian", HESSIANS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_softmax_full_hessian_matrix_is_the_jacobian_of_the_gradient(hessian, gamma):
    x, y, alpha = _softmax_case(5, seed=1)
    m = softmax_focal_hessian_matrix(x, y, gamma=gamma, alpha=alpha, hessian=hessian)
    np.testing.assert_array_equal(m, np.swapaxes(m, 1, 2))  # symmetric
    np.testing.assert_allclose(np.diagonal(m, axis1=1, axis2=2),
                               softmax_focal_grad_hess(x, y, gamma=gamma, alpha=alpha, hessian=hessian)[1],
                               rtol=1e-12, atol=1e-300)
    if hessian == "exact":  # column j of the matrix = d grad / d x_j, by finite differences
        g0 = lambda z: softmax_focal_grad_hess(z, y, gamma=gamma, alpha=alpha)[0]  # noqa: E731
        scale = np.abs(m).max(axis=(1, 2))
        for j in range(5):
            e = np.zeros_like(x)
            e[:, j] = 1.0
            col = _fd(lambda t: g0(x + t * e), 0.0, 1e-3)
            assert np.all(np.abs(col - m[:, :, j]).max(1) <= 1e-6 * scale + 1e-300)
    else:  # positive semi-definite
        assert np.linalg.eigvalsh(m).min() >= -1e-12 * np.abs(m).max()


def test_sigmoid_equals_softmax_with_two_classes():
    x, y = _binary_case(1.0)
    y = np.where(np.arange(len(x)) % 2 == 0, 1.0, 0.0)
    two = np.stack([np.zeros_like(x), x], axis=1)
    for hessian in HESSIANS:
        g, h = binary_focal_grad_hess(x, y, gamma=2.0, hessian=hessian)
        g2, h2 = softmax_focal_grad_hess(two, y.astype(int), gamma=2.0, hessian=hessian)
        np.testing.assert_allclose(g2[:, 1], g, rtol=1e-9, atol=1e-300)
        np.testing.assert_allclose(h2[:, 1], h, rtol=1e-9, atol=1e-300)


# ---------------------------------------------------------------- gamma = 0, signs, extremes
EXTREME = np.array([-1e4, -800.0, -40.0, -1.0, 0.0, 1e-8, 1.0, 40.0, 800.0, 1e4])


@pytest.mark.parametrize("hessian", HESSIANS)
def test_at_gamma_0_every_choice_is_the_logistic_and_softmax_hessian(hessian):
    x = np.concatenate([EXTREME, np.linspace(-30, 30, 61)])
    p, q = np.exp(-np.logaddexp(0, -x)), np.exp(-np.logaddexp(0, x))  # sigmoid(x), 1 - sigmoid(x)
    for label, grad in ((0.0, 0.7 * p), (1.0, -0.3 * q)):
        g, h = binary_focal_grad_hess(x, np.full_like(x, label), gamma=0.0, alpha=0.3, hessian=hessian)
        a = 0.3 if label == 1 else 0.7
        np.testing.assert_allclose(g, grad, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(h, a * p * q, rtol=1e-12, atol=1e-300)
    rng = np.random.default_rng(0)
    xm = rng.normal(0, 20, (50, 4))
    ym = rng.integers(0, 4, 50)
    z = np.exp(xm - xm.max(1, keepdims=True))
    pm = z / z.sum(1, keepdims=True)
    g, h = softmax_focal_grad_hess(xm, ym, gamma=0.0, hessian=hessian)
    np.testing.assert_allclose(g, pm - np.eye(4)[ym], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(h, pm * (1 - pm), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_positive_choices_are_never_negative_and_nothing_is_nan(gamma):
    rng = np.random.default_rng(int(gamma * 10))
    x = np.concatenate([EXTREME, rng.normal(0, 8, 2000)])
    for y in (np.zeros_like(x), np.ones_like(x), rng.uniform(0, 1, x.size)):
        out = {hh: binary_focal_grad_hess(x, y, gamma=gamma, alpha=0.25, hessian=hh) for hh in HESSIANS}
        for hh, (g, h) in out.items():
            assert np.isfinite(g).all() and np.isfinite(h).all(), hh
            if hh != "exact":
                assert (h >= 0).all(), hh
        # the order of the positive choices: clipped >= Gauss-Newton >= fixed weight
        assert (out["clipped"][1] >= out["gauss_newton"][1]).all()
        assert (out["gauss_newton"][1] >= out["fixed_weight"][1]).all()
    xm = np.concatenate([rng.normal(0, 8, (500, 6)), np.tile(EXTREME[:6], (10, 1)) * rng.choice([-1, 1], (10, 6))])
    ym = rng.integers(0, 6, len(xm))
    for hh in HESSIANS:
        g, h = softmax_focal_grad_hess(xm, ym, gamma=gamma, hessian=hh)
        assert np.isfinite(g).all() and np.isfinite(h).all()
        if hh != "exact":
            assert (h >= 0).all(), hh
        gm, m = softmax_grad_and_matrix(xm, ym, gamma, None, hh)
        assert np.isfinite(m).all()


def test_the_exact_hessian_is_negative_somewhere_so_the_positive_choices_differ_from_it():
    x, y = _binary_case(1.0)
    exact = binary_focal_grad_hess(x, y, gamma=2.0, hessian="exact")[1]
    assert (exact < 0).any()
    for hh in POSITIVE:
        h = binary_focal_grad_hess(x, y, gamma=2.0, hessian=hh)[1]
        assert not np.allclose(h, exact)


def test_tiny_and_huge_margins_give_the_limits():
    g, h = binary_focal_grad_hess(np.array([1e4, -1e4]), np.array([1.0, 1.0]), gamma=2.0, hessian="exact")
    assert g[0] == 0.0 and h[0] == 0.0  # certain and right: nothing to learn
    assert g[1] == -1.0 and h[1] == 0.0  # certain and wrong: the gradient of the linear tail


# ---------------------------------------------------------------------------------- init score
def test_prior_init_score_is_the_log_odds_and_log_priors():
    assert prior_init_score([0, 0, 0, 1])[0] == pytest.approx(np.log(1 / 3))
    assert prior_init_score([0, 1], sample_weight=[3.0, 1.0])[0] == pytest.approx(np.log(1 / 3))
    np.testing.assert_allclose(prior_init_score([0, 1, 1, 2], num_class=3), np.log([0.25, 0.5, 0.25]))
    # a margin at the prior gives zero total logistic gradient
    y = np.array([0, 0, 0, 0, 1])
    g = binary_focal_grad_hess(np.full(5, prior_init_score(y)[0]), y, gamma=0.0)[0]
    assert abs(g.sum()) < 1e-12


# --------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: binary_focal_grad_hess(np.zeros((2, 2)), [0, 1]), ValueError, r"margin must have shape \(N,\)"),
        (lambda: binary_focal_grad_hess([0.0, np.nan], [0, 1]), ValueError, "margin must be finite"),
        (lambda: binary_focal_grad_hess("ab", [0, 1]), TypeError, "margin must be"),
        (lambda: binary_focal_grad_hess([0.0, 1.0], [0, 2]), ValueError, r"y must hold labels in \[0, 1\]"),
        (lambda: binary_focal_grad_hess([0.0, 1.0], [0]), ValueError, "y must have shape"),
        (lambda: binary_focal_grad_hess([0.0], [1], gamma=-1), ValueError, "gamma must be"),
        (lambda: binary_focal_grad_hess([0.0], [1], gamma="2"), TypeError, "gamma must be a real number"),
        (lambda: binary_focal_grad_hess([0.0], [1], alpha=1.5), ValueError, r"alpha must be in \[0, 1\]"),
        (lambda: binary_focal_grad_hess([0.0], [1], hessian="newton"), ValueError, "hessian must be one of"),
        (lambda: softmax_focal_grad_hess(np.zeros(3), [0, 1, 2]), ValueError, r"margin must have shape \(N, K\)"),
        (lambda: softmax_focal_grad_hess(np.zeros((2, 1)), [0, 0]), ValueError, "K >= 2"),
        (lambda: softmax_focal_grad_hess(np.zeros((2, 3)), [0, 3]), ValueError, r"y must hold integer class indices in \[0, 2\]"),
        (lambda: softmax_focal_grad_hess(np.zeros((2, 3)), [0, 0.5]), ValueError, "y must hold integer class"),
        (lambda: softmax_focal_grad_hess(np.zeros((2, 3)), [0]), ValueError, "y must hold one class index per row"),
        (lambda: softmax_focal_grad_hess(np.zeros((2, 3)), [0, 1], alpha=0.25), TypeError, "alpha for the softmax"),
        (lambda: softmax_focal_grad_hess(np.zeros((2, 3)), [0, 1], alpha=[1, 2]), ValueError, "alpha must have one weight per class"),
        (lambda: softmax_focal_grad_hess(np.zeros((2, 3)), [0, 1], alpha=[1, -2, 1]), ValueError, "alpha values must be"),
        (lambda: softmax_focal_grad_hess(np.zeros((2, 3)), [0, 1], hessian=None), ValueError, "hessian must be one of"),
        (lambda: prior_init_score([0, 0]), ValueError, "both classes"),
        (lambda: prior_init_score([0, 1], num_class=3), ValueError, "every class must occur"),
        (lambda: prior_init_score([0, 1], sample_weight=[1.0]), ValueError, "sample_weight must have shape"),
        (lambda: prior_init_score([0, 1], sample_weight=[-1.0, 1.0]), ValueError, "sample_weight must be finite"),
        (lambda: prior_init_score([0, 1], num_class=1), ValueError, "num_class must be >= 2"),
    ],
)
def test_bad_input_names_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_empty_and_low_precision_input():
    g, h = binary_focal_grad_hess(np.zeros(0), np.zeros(0))
    assert g.shape == h.shape == (0,) and g.dtype == np.float64
    g, h = softmax_focal_grad_hess(np.zeros((0, 3)), np.zeros(0, dtype=int))
    assert g.shape == h.shape == (0, 3)
    # float16 / float32 margins and bool labels are read as float64 values
    x16 = np.array([-3.0, 0.5, 7.0], dtype=np.float16)
    g16, h16 = binary_focal_grad_hess(x16, np.array([True, False, True]))
    g64, h64 = binary_focal_grad_hess(x16.astype(np.float64), np.array([1.0, 0.0, 1.0]))
    np.testing.assert_array_equal(g16, g64)
    np.testing.assert_array_equal(h16, h64)
