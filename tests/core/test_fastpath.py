"""The eager fast path (focalkit._fastpath) against the general path: same values bit for bit, same
errors, and taken exactly for the common call.

The general path is reached with the same arguments by passing gamma as a NumPy float (the fast
path takes exact Python floats only; the general path's check_gamma turns it into the same float).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import focalkit as fk
from focalkit import _fastpath
from focalkit.kernels import cpu

pytestmark = pytest.mark.skipif(not cpu.available(), reason="the C kernel is not built here")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _both(loss_fn, x: torch.Tensor, t: torch.Tensor, gamma: float, scale: float = 1.0, **kw):
    """(loss, x.grad) through the fast path and through the general path."""
    out = []
    for g in (gamma, np.float64(gamma)):
        xx = x.detach().clone().requires_grad_()
        loss = loss_fn(xx, t, gamma=g, **kw)
        (loss * scale).backward()
        out.append((loss.detach(), xx.grad))
    return out


def _same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert torch.equal(a, b) or (a.isnan() == b.isnan()).all() and torch.equal(a.nan_to_num(), b.nan_to_num())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(8, 5), (32, 10), (3, 4, 5, 2), (0, 3)])
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 2.5])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_fast_path_equals_the_general_path(dtype, shape, gamma, reduction):
    g = _gen(1)
    x = (torch.randn(shape, generator=g) * 3).to(dtype)
    y = torch.randint(0, shape[1], shape[:1] + shape[2:], generator=g)
    if y.numel():
        y.view(-1)[0] = -100  # an ignored position
    for ls, scale in ((0.0, 1.0), (0.1, 3.7)):
        (la, ga), (lb, gb) = _both(fk.softmax_focal_loss, x, y, gamma, scale, reduction=reduction, label_smoothing=ls)
        _same(la, lb)
        _same(ga, gb)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("alpha", [0.25, None, 1])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_sigmoid_fast_path_equals_the_general_path(dtype, alpha, reduction):
    g = _gen(2)
    x = (torch.randn(32, 20, generator=g) * 3).to(dtype)
    t = (torch.rand(32, 20, generator=g) < 0.1).float()
    soft = torch.rand(32, 20, generator=g)
    for tt, ls, gamma, scale in ((t, 0.0, 2.0, 1.0), (soft, 0.2, 1.5, 0.3), (t, 0.0, 0, 2.0), (t.to(dtype), 0.0, 2.0, 1.0),
                                 (soft.half(), 0.1, 2.0, 1.0)):  # fmt: skip
        (la, ga), (lb, gb) = _both(fk.sigmoid_focal_loss, x, tt, gamma, scale, alpha=alpha, reduction=reduction,
                                   label_smoothing=ls)  # fmt: skip
        _same(la, lb)
        _same(ga, gb)


def test_fast_path_is_taken_for_the_common_call_only():
    g = _gen(3)
    x = torch.randn(8, 5, generator=g, requires_grad=True)
    y = torch.randint(0, 5, (8,), generator=g)
    t = torch.rand(8, 5, generator=g)
    common = dict(alpha=None, gamma=2.0, reduction="mean", weight=None, normalizer=None, ignore_index=-100,
                  label_smoothing=0.0, epsilon=0.0, composed_loss=None)  # fmt: skip
    assert _fastpath.softmax_focal_loss(x, y, **common) is not None
    for change in (dict(reduction="none"), dict(weight=torch.ones(8)), dict(normalizer=2.0), dict(gamma=-1.0),
                   dict(gamma=float("nan")), dict(gamma=True), dict(label_smoothing=1.5), dict(alpha=[1.0] * 5),
                   dict(ignore_index=2**64), dict(epsilon=1.0), dict(gamma=fk.FLSD53)):  # fmt: skip
        assert _fastpath.softmax_focal_loss(x, y, **{**common, **change}) is None, change
    assert _fastpath.softmax_focal_loss(x.double(), y, **common) is None
    assert _fastpath.softmax_focal_loss(x.half(), y, **common) is None
    assert _fastpath.softmax_focal_loss(x, y.int(), **common) is None
    assert _fastpath.softmax_focal_loss(x.t(), y[:5], **common) is None  # not contiguous
    with fk.use_backend("eager"):
        assert _fastpath.softmax_focal_loss(x, y, **common) is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert _fastpath.softmax_focal_loss(x.bfloat16(), y, **common) is None
    sig = dict(common, alpha=0.25, validate_args=True, label_smoothing_mode="binary", ignore_index=None)
    assert _fastpath.sigmoid_focal_loss(x, t, **sig) is not None
    for change in (dict(alpha=1.5), dict(ignore_index=-1), dict(label_smoothing_mode="uniform"), dict(weight=t),
                   dict(epsilon=-0.5)):  # fmt: skip
        assert _fastpath.sigmoid_focal_loss(x, t, **{**sig, **change}) is None, change
    assert _fastpath.sigmoid_focal_loss(x, t.requires_grad_(), **sig) is None  # d(loss)/d(targets)
    assert _fastpath.sigmoid_focal_loss(x, t.detach() * 2, **sig) is None  # out of [0, 1]: the general path raises
    assert _fastpath.sigmoid_focal_loss(x, t.detach().double(), **sig) is None  # float64 targets: checked as given
    assert _fastpath.sigmoid_focal_loss(x, t.detach().bfloat16(), **sig) is not None


def test_bad_labels_raise_the_validation_message():
    x = torch.randn(4, 3, requires_grad=True)
    for y in (torch.tensor([0, 1, 3, 2]), torch.tensor([0, -1, 2, -100])):
        msgs = []
        for gamma in (2.0, np.float64(2.0)):
            with pytest.raises(ValueError) as e:
                fk.softmax_focal_loss(x, y, gamma=gamma)
            msgs.append(str(e.value))
        assert msgs[0] == msgs[1] and "class-index targets must be in [0, 2]" in msgs[0]
        with pytest.raises(ValueError, match="outside"):  # without validate_args: the kernel's message
            fk.softmax_focal_loss(x, y, validate_args=False)
    assert x.grad is None
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        fk.sigmoid_focal_loss(x, torch.full((4, 3), float("nan")))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_no_grad_retain_graph_and_double_backward(dtype):
    g = _gen(4)
    x = torch.randn(16, 6, generator=g).to(dtype).requires_grad_()
    y = torch.randint(0, 6, (16,), generator=g)
    with torch.no_grad():
        a = fk.softmax_focal_loss(x, y)
    assert a.grad_fn is None and torch.equal(a, fk.softmax_focal_loss(x, y, gamma=np.float64(2.0)).detach())
    loss = fk.softmax_focal_loss(x, y)
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2,) = torch.autograd.grad(loss * 2, x)
    torch.testing.assert_close(g2, 2 * g1)
    for gamma in (2.0, np.float64(2.0)):  # create_graph: the composed path's exact second derivative
        xx = x.detach().clone().requires_grad_()
        (gx,) = torch.autograd.grad(fk.softmax_focal_loss(xx, y, gamma=gamma), xx, create_graph=True)
        (h,) = torch.autograd.grad(gx.square().sum(), xx)
        if gamma == 2.0:
            first = (gx.detach(), h)
    _same(first[0], gx.detach())
    _same(first[1], h)
    xx = x.detach().clone().requires_grad_()
    loss = fk.softmax_focal_loss(xx, y)
    with torch.no_grad():
        xx.add_(1.0)  # the logits modified in place: a differentiable backward cannot use them
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(loss, xx, create_graph=True)


def test_large_logits_are_saved_not_kept():
    """Above the small size the logits are a saved tensor, released by backward (memory); the
    differentiable backward still finds them."""
    g = _gen(5)
    x = torch.randn(300, 300, generator=g, requires_grad=True)
    y = torch.randint(0, 300, (300,), generator=g)
    loss = fk.softmax_focal_loss(x, y)
    assert loss.grad_fn.kept is None and len(loss.grad_fn.saved_tensors) == 2
    (gx,) = torch.autograd.grad(loss, x, create_graph=True)
    (ref,) = torch.autograd.grad(fk.softmax_focal_loss(x, y, gamma=np.float64(2.0)), x, create_graph=True)
    _same(gx.detach(), ref.detach())
    small = fk.softmax_focal_loss(x[:4, :5].detach().clone().requires_grad_(), y[:4] % 5)
    assert small.grad_fn.kept[0] is not None


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(8, 5), (256, 1000), (2, 3, 4, 5)])
@pytest.mark.parametrize("gamma", [0.0, 2.0, 2.5])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_soft_targets_fast_path_equals_the_general_path(dtype, shape, gamma, reduction):
    """Mixup/cutmix targets (float32 class probabilities): the fast path, small (NumPy range check)
    and large (torch.aminmax) alike, gives the general path's values bit for bit."""
    g = _gen(5)
    x = (torch.randn(shape, generator=g) * 3).to(dtype)
    t = torch.softmax(torch.randn(shape, generator=g) * 2, dim=1)
    common = dict(alpha=None, gamma=float(gamma), reduction=reduction, weight=None, normalizer=None,
                  ignore_index=-100, label_smoothing=0.0, epsilon=0.0, composed_loss=None)  # fmt: skip
    assert _fastpath.softmax_focal_loss(x, t, **common) is not None  # taken
    for ls, scale in ((0.0, 1.0), (0.1, 3.7)):
        (la, ga), (lb, gb) = _both(fk.softmax_focal_loss, x, t, gamma, scale, reduction=reduction, label_smoothing=ls)
        _same(la, lb)
        _same(ga, gb)


@pytest.mark.parametrize("n", [8, 300])  # the check in the kernel's entry point, and torch.aminmax
def test_softmax_soft_targets_out_of_range_or_nan_raise_the_general_paths_error(n):
    x = torch.randn(n, 300)
    for bad in (1.5, -0.1, float("nan")):
        t = torch.full((n, 300), 1.0 / 300)
        t[1, 2] = bad
        with pytest.raises(ValueError, match="class-probability targets must be in \\[0, 1\\]"):
            fk.softmax_focal_loss(x, t)
        fk.softmax_focal_loss(x, t, validate_args=False)  # unchecked, as asked: no error


def test_softmax_soft_targets_not_taken_when_they_need_the_general_path():
    x = torch.randn(8, 5)
    t = torch.softmax(torch.randn(8, 5), 1)
    common = dict(alpha=None, gamma=2.0, reduction="mean", weight=None, normalizer=None, ignore_index=-100,
                  label_smoothing=0.0, epsilon=0.0, composed_loss=None)  # fmt: skip
    assert _fastpath.softmax_focal_loss(x, t.double(), **common) is None  # float64 targets
    assert _fastpath.softmax_focal_loss(x, t.requires_grad_(), **common) is None  # d/d(targets)
    assert _fastpath.softmax_focal_loss(x, t.detach(), **{**common, "alpha": [1.0] * 5}) is None
    assert _fastpath.softmax_focal_loss(x, t.detach()[:, :4], **common) is None  # shape mismatch
    assert _fastpath.softmax_focal_loss(x, t.detach(), **{**common, "epsilon": 1.0}) is None


@pytest.mark.parametrize("numel", [640, 300 * 300])  # checked by the kernel's entry point / by torch.aminmax
def test_sigmoid_targets_out_of_range_or_nan_raise_the_general_paths_error(numel):
    x = torch.randn(numel // 10, 10)
    for bad in (1.5, -0.1, float("nan"), float("inf")):
        t = torch.rand(numel // 10, 10)
        t[-1, 3] = bad
        with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
            fk.sigmoid_focal_loss(x, t)
        fk.sigmoid_focal_loss(x, t, validate_args=False)  # unchecked, as asked: no error


def test_large_sigmoid_targets_take_the_fast_path_with_the_same_values():
    g = _gen(8)
    x = torch.randn(300, 300, generator=g)
    t = (torch.rand(300, 300, generator=g) < 0.05).float()
    assert _fastpath.sigmoid_focal_loss(x, t, 0.25, 2.0, "mean", None, None, None, 0.0, True, "binary", 0.0, None) is not None
    (la, ga), (lb, gb) = _both(fk.sigmoid_focal_loss, x, t, 2.0, 1.0, alpha=0.25)
    _same(la, lb)
    _same(ga, gb)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("grad_out", [0.0, float("nan"), -2.0, 65536.0, 1e-30])
def test_incoming_gradients_scale_as_on_the_general_path(dtype, grad_out):
    """0 gives zeros (even where the saved gradient is inf), NaN gives NaN, anything else the
    float32 product: bit for bit as the general path, for a kept (small) and a saved (large) gradient."""
    g = _gen(9)
    for shape in ((8, 5), (300, 300)):
        x = (torch.randn(shape, generator=g) * 3).to(dtype)
        x[0, 0] = float("inf")
        y = torch.randint(0, shape[1], shape[:1], generator=g)
        got = []
        for gamma in (2.0, np.float64(2.0)):
            xx = x.detach().clone().requires_grad_()
            loss = fk.softmax_focal_loss(xx, y, gamma=gamma)
            (gx,) = torch.autograd.grad(loss, xx, torch.tensor(grad_out, dtype=dtype))
            got.append(gx)
        _same(*got)
        if grad_out == 0.0:
            assert (got[0] == 0).all()


def test_a_second_backward_without_retain_graph_raises_as_for_cross_entropy():
    x = torch.randn(8, 5, requires_grad=True)
    y = torch.randint(0, 5, (8,))
    for loss_fn in (torch.nn.functional.cross_entropy, fk.softmax_focal_loss):
        loss = loss_fn(x, y)
        loss.backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            loss.backward()


def test_a_retained_graph_is_not_changed_by_edits_of_the_grad_it_gave():
    """The kept gradient is the node's: clipping x.grad in place (as clip_grad_norm_ does) must not
    change what a second backward through the retained graph returns."""
    g = _gen(10)
    x = torch.randn(16, 6, generator=g, requires_grad=True)
    y = torch.randint(0, 6, (16,), generator=g)
    loss = fk.softmax_focal_loss(x, y)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    x.grad.mul_(0.0)
    (again,) = torch.autograd.grad(loss, x, retain_graph=True)
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    (twice,) = torch.autograd.grad(loss * 2, x)
    torch.testing.assert_close(twice, 2 * first)


def test_gradients_reach_the_layer_before_the_loss():
    """Logits from a model (not a leaf): the gradient flows on through the fast path's node."""
    g = _gen(11)
    lin = torch.nn.Linear(7, 5)
    inp = torch.randn(8, 7, generator=g)
    y = torch.randint(0, 5, (8,), generator=g)
    grads = []
    for gamma in (2.0, np.float64(2.0)):
        lin.zero_grad(set_to_none=True)
        fk.softmax_focal_loss(lin(inp), y, gamma=gamma).backward()
        grads.append((lin.weight.grad.clone(), lin.bias.grad.clone()))
    _same(grads[0][0], grads[1][0])
    _same(grads[0][1], grads[1][1])
