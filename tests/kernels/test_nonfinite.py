"""NaN and +-inf logits propagate through the compiled kernels as through PyTorch's own losses (issue 9.5).

Runs on every kernel backend available here (the ``kernel`` fixture of tests/kernels/conftest.py):
``fused`` (the C kernel on CPU) and ``triton`` (under Triton's interpreter, which tests/conftest.py
switches on). The references are PyTorch's ``F.cross_entropy`` /
``F.binary_cross_entropy_with_logits`` on the same input: where they are NaN or inf the focal loss
is the same, at gamma = 0 (no alpha) it equals them, gradients included. Ignored elements and
positions give exactly 0 whatever their logits.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

import focalkit as fk
from focalkit.backends import closed_form

NAN, INF = float("nan"), float("inf")
KERNEL_BACKENDS = [b for b in ("fused", "triton") if b in fk.available_backends()]  # as the fixture's

pytestmark = [
    pytest.mark.skipif(not KERNEL_BACKENDS, reason="no compiled kernel here (C extension or triton)"),
    # the Triton interpreter evaluates NaN arithmetic in NumPy, which warns about it
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
]


def _loss_and_grad(fn, x, *args, **kw):
    x = x.clone().requires_grad_()
    loss = fn(x, *args, **kw)
    (g,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), g


def _same_nonfinite(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert torch.equal(torch.isnan(actual), torch.isnan(expected)), (actual, expected)
    assert torch.equal(torch.isposinf(actual), torch.isposinf(expected)), (actual, expected)
    assert torch.equal(torch.isneginf(actual), torch.isneginf(expected)), (actual, expected)


# --- the repro ------------------------------------------------------------------------------------


def test_one_nan_logit_makes_the_softmax_loss_nan(kernel):
    """Issue 9.5: one NaN logit gave loss 1.3854 with a NaN gradient; a divergence check never fired."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 5, generator=g)
    x[3, 2] = NAN
    y = torch.randint(0, 5, (8,), generator=g)
    for gamma in (0.0, 2.0):
        loss, grad = _loss_and_grad(fk.softmax_focal_loss, x, y, gamma=gamma)
        assert torch.isnan(loss) and not torch.isfinite(loss)
        assert torch.isnan(grad[3]).all()
        assert torch.isnan(grad).any()  # the mean spreads NaN: as F.cross_entropy's gradient
        per, g_per = _loss_and_grad(fk.softmax_focal_loss, x, y, gamma=gamma, reduction="none")
        assert torch.isnan(per[3]) and torch.isfinite(per[torch.arange(8) != 3]).all()
        assert torch.isnan(g_per[3]).all() and torch.isfinite(g_per[torch.arange(8) != 3]).all()


def test_one_nan_logit_makes_the_sigmoid_loss_nan(kernel):
    x = torch.randn(4, 6)
    x[1, 1] = NAN
    for targets in (torch.rand(4, 6).round(), torch.tensor([0, 6, 2, 5])):  # dense, class indices
        loss, grad = _loss_and_grad(fk.sigmoid_focal_loss, x, targets)
        assert torch.isnan(loss)
        per, g_per = _loss_and_grad(fk.sigmoid_focal_loss, x, targets, reduction="none")
        assert torch.isnan(per[1, 1]) and torch.isnan(g_per[1, 1])
        assert int(torch.isnan(per).sum()) == 1 and int(torch.isnan(g_per).sum()) == 1


# --- softmax: every pattern, as F.cross_entropy ----------------------------------------------------------

# (logits row, label) with F.cross_entropy's result noted
_SOFTMAX_ROWS = [
    ([0.5, NAN, 1.0, 0.0], 0),  # NaN anywhere: NaN
    ([INF, 0.0, 1.0, 0.0], 0),  # +inf: NaN (inf - inf in the log-softmax)
    ([INF, 0.0, 1.0, 0.0], 2),
    ([-INF, 0.0, 1.0, 0.0], 1),  # -inf of another class: a masked class, finite loss and gradient
    ([0.3, 0.1, -INF, 2.0], 2),  # -inf of the target class: +inf loss, finite gradient
    ([INF, INF, 0.0, 0.0], 1),  # NaN
    ([-INF, -INF, -INF, -INF], 0),  # all -inf: NaN
    ([-INF, 3.0, -INF, -INF], 1),  # one class left: loss 0
    ([0.2, NAN, INF, -INF], -100),  # ignored: exactly 0 whatever the logits
    ([0.2, 0.1, 0.3, -1.0], 3),  # finite
]


def _softmax_case(layout: str):
    x = torch.tensor([r for r, _ in _SOFTMAX_ROWS])
    y = torch.tensor([lab for _, lab in _SOFTMAX_ROWS])
    if layout == "nchw":  # the same rows as the positions of a (1, C, 2, 5) map
        x = x.t().reshape(1, 4, 2, 5)
        y = y.reshape(1, 2, 5)
    return x, y


def _rows(t: torch.Tensor, layout: str) -> torch.Tensor:
    """Per-position tensor back in row order; a gradient of the logits' shape as (positions, C)."""
    if layout == "rows":
        return t
    if t.dim() == 4:
        return t.reshape(4, 10).t()
    return t.reshape(10)


@pytest.mark.parametrize("layout", ["rows", "nchw"])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_softmax_gamma_zero_equals_cross_entropy_on_nonfinite_logits(kernel, layout, ls):
    x, y = _softmax_case(layout)
    loss, grad = _loss_and_grad(fk.softmax_focal_loss, x, y, gamma=0.0, reduction="none", label_smoothing=ls)
    ce, ce_grad = _loss_and_grad(F.cross_entropy, x, y, reduction="none", label_smoothing=ls)
    _same_nonfinite(loss, ce)
    torch.testing.assert_close(loss, ce, equal_nan=True, rtol=1e-5, atol=1e-6)
    kept = _rows(y, layout) != -100
    torch.testing.assert_close(
        _rows(grad, layout)[kept], _rows(ce_grad, layout)[kept], equal_nan=True, rtol=1e-5, atol=1e-6
    )
    assert (_rows(grad, layout)[~kept] == 0).all() and (_rows(loss, layout)[~kept] == 0).all()


@pytest.mark.parametrize("layout", ["rows", "nchw"])
@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.0])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_softmax_focal_nonfinite_pattern_is_cross_entropys(kernel, layout, ls, gamma, with_alpha):
    x, y = _softmax_case(layout)
    alpha = torch.tensor([0.5, 1.0, 2.0, 0.25]) if with_alpha else None
    loss, grad = _loss_and_grad(
        fk.softmax_focal_loss, x, y, gamma=gamma, alpha=alpha, reduction="none", label_smoothing=ls
    )
    ce = F.cross_entropy(x, y, reduction="none", label_smoothing=ls)
    _same_nonfinite(loss, ce)
    lr, gr = _rows(loss, layout), _rows(grad, layout)
    kept = _rows(y, layout) != -100
    nan_rows = torch.isnan(lr)
    assert torch.isnan(gr[nan_rows]).all()  # NaN loss: NaN gradient, the whole position
    assert torch.isfinite(gr[~nan_rows]).all()  # +inf loss (a -inf target class): finite gradient
    assert (gr[~kept] == 0).all() and (lr[~kept] == 0).all()
    # Positions with a finite loss: the float64 closed form (masked -inf classes included).
    fin = torch.isfinite(lr) & kept
    xr = _rows(x, layout)[fin].double()
    want_l, _, want_g = closed_form.softmax_focal_fwd(
        xr, _rows(y, layout)[fin], alpha=alpha, gamma=gamma, ignore_index=-100, label_smoothing=ls,
        reduce=False, compute_grad=True,
    )  # fmt: skip
    torch.testing.assert_close(lr[fin].double(), want_l, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gr[fin].double(), want_g, rtol=1e-5, atol=1e-6)


def test_softmax_minus_inf_target_gradient_is_the_cross_entropy_limit(kernel):
    """p_y = 0: (1 - p_y)^gamma = 1 and p_y log p_y -> 0, so the gradient is alpha_y (p - onehot)."""
    x = torch.tensor([[0.3, 0.1, -INF, 2.0], [1.0, -INF, 0.0, -INF]])
    y = torch.tensor([2, 1])
    _, ce_grad = _loss_and_grad(F.cross_entropy, x, y, reduction="none")
    for gamma in (0.5, 2.0):
        loss, grad = _loss_and_grad(fk.softmax_focal_loss, x, y, gamma=gamma, reduction="none")
        assert torch.isposinf(loss).all()
        torch.testing.assert_close(grad, ce_grad, rtol=1e-6, atol=1e-7)


def test_softmax_many_classes_and_masked_chunks(kernel):
    """-inf masks over whole stretches of a long row (several class chunks of the Triton kernel)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 1500, generator=g) - 5.0  # every logit negative
    x[:, 1000:] = -INF  # a whole chunk masked
    x[2, 7] = NAN
    y = torch.tensor([3, 999, 5])
    for gamma in (0.0, 2.0):
        loss, grad = _loss_and_grad(fk.softmax_focal_loss, x, y, gamma=gamma, reduction="none")
        assert torch.isfinite(loss[:2]).all() and torch.isnan(loss[2])
        want_l, _, want_g = closed_form.softmax_focal_fwd(
            x[:2, :1000].double(), y[:2], alpha=None, gamma=gamma, ignore_index=-100,
            label_smoothing=0.0, reduce=False, compute_grad=True,
        )  # fmt: skip
        torch.testing.assert_close(loss[:2].double(), want_l, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad[:2, :1000].double(), want_g, rtol=1e-5, atol=1e-7)
        assert (grad[:2, 1000:] == 0).all() and torch.isnan(grad[2]).all()


# --- sigmoid: as F.binary_cross_entropy_with_logits -------------------------------------------------------

_SIG_X = [NAN, NAN, INF, INF, -INF, -INF, 1.0, -2.0]
_SIG_T = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_sigmoid_gamma_zero_equals_bce_on_nonfinite_logits(kernel, ls):
    x, t = torch.tensor([_SIG_X]), torch.tensor([_SIG_T])
    loss, grad = _loss_and_grad(
        fk.sigmoid_focal_loss, x, t, gamma=0.0, alpha=None, reduction="none", label_smoothing=ls
    )
    ts = t * (1 - ls) + 0.5 * ls
    bce, bce_grad = _loss_and_grad(F.binary_cross_entropy_with_logits, x, ts, reduction="none")
    _same_nonfinite(loss, bce)
    torch.testing.assert_close(loss, bce, equal_nan=True, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad, bce_grad, equal_nan=True, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("form", ["dense", "labels"])
def test_sigmoid_focal_nonfinite_pattern_is_bces(kernel, gamma, alpha, form):
    x, t = torch.tensor([_SIG_X]), torch.tensor([_SIG_T])
    if form == "labels":  # the same elements as class-0 scores of class indices: (8 positions, 2 classes)
        x = torch.stack([x[0], torch.linspace(-1, 1, 8)], 1)
        t = torch.stack([t[0], torch.zeros(8)], 1)
        targets = torch.where(t[:, 0] > 0, 0, 2)  # class 0, or 2 = background
    else:
        targets = t
    loss, grad = _loss_and_grad(fk.sigmoid_focal_loss, x, targets, gamma=gamma, alpha=alpha, reduction="none")
    bce, bce_grad = _loss_and_grad(F.binary_cross_entropy_with_logits, x, t, reduction="none")
    _same_nonfinite(loss, bce)
    assert torch.equal(torch.isnan(grad), torch.isnan(x))  # NaN logit: NaN gradient, nothing else
    # +-inf logits: p is exactly 0 or 1, q^gamma is 0 or 1, so the gradient is alpha_t (p - t)
    at = torch.ones_like(t) if alpha is None else alpha * t + (1 - alpha) * (1 - t)
    inf = torch.isinf(x)
    torch.testing.assert_close(grad[inf], (at * bce_grad)[inf], rtol=0, atol=0)
    fin = torch.isfinite(x)
    want_l, _, want_g = closed_form.sigmoid_focal_fwd(
        x[fin].double(), t[fin].double(), labels=False, alpha=alpha, gamma=gamma, ignore_index=None,
        label_smoothing=0.0, reduce=False, compute_grad=True,
    )  # fmt: skip
    torch.testing.assert_close(loss[fin].double(), want_l, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad[fin].double(), want_g, rtol=1e-5, atol=1e-7)


def test_ignored_elements_are_zero_whatever_their_logits(kernel):
    x = torch.tensor([[NAN, INF, -INF, 0.5], [NAN, 1.0, 2.0, INF]])
    t = torch.tensor([[-1.0, -1.0, -1.0, 1.0], [-1.0, 0.0, 1.0, -1.0]])
    loss, grad = _loss_and_grad(fk.sigmoid_focal_loss, x, t, ignore_index=-1, reduction="none")
    ign = t == -1
    assert (loss[ign] == 0).all() and (grad[ign] == 0).all()
    assert torch.isfinite(loss[~ign]).all()
    total = fk.sigmoid_focal_loss(x, t, ignore_index=-1)
    assert torch.isfinite(total)  # every non-finite logit is ignored
    y = torch.tensor([[[0, -1], [1, 2]], [[2, 1], [-1, 0]]])  # class indices (N, H, W)
    xs = torch.randn(2, 3, 2, 2)
    xs[0, :, 0, 1] = NAN  # an ignored position
    xs[1, 1, 1, 0] = INF  # an ignored position
    for fn in (fk.softmax_focal_loss, fk.sigmoid_focal_loss):
        loss, grad = _loss_and_grad(fn, xs, y, ignore_index=-1, reduction="none")
        ign = y == -1
        assert (loss.reshape(2, -1, 2, 2).sum(1)[ign] == 0).all()
        assert (grad.movedim(1, -1)[ign] == 0).all()
        assert torch.isfinite(fn(xs, y, ignore_index=-1))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_logits_keep_nan_and_inf(kernel, dtype):
    x = torch.tensor([[0.5, NAN, 1.0], [1.0, 0.0, -1.0], [0.3, 0.1, -INF]]).to(dtype)
    y = torch.tensor([0, 2, 2])
    loss, grad = _loss_and_grad(fk.softmax_focal_loss, x, y, reduction="none")
    assert grad.dtype == dtype
    assert torch.isnan(loss[0]) and torch.isfinite(loss[1]) and torch.isposinf(loss[2])
    assert torch.isnan(grad[0]).all() and torch.isfinite(grad[1:]).all()
    xs = torch.tensor([NAN, INF, -INF, 0.5]).to(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bce = F.binary_cross_entropy_with_logits(xs.float(), torch.tensor([1.0, 0.0, 1.0, 0.0]), reduction="none")
    loss = fk.sigmoid_focal_loss(xs, torch.tensor([1.0, 0.0, 1.0, 0.0]), reduction="none")
    _same_nonfinite(loss.float(), bce)
