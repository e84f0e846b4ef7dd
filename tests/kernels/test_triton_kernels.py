"""The Triton kernels (focalkit.kernels._triton, kernels in _triton_kernels) against the float64 NumPy reference.

On a machine without CUDA they run under Triton's interpreter: tests/conftest.py sets
TRITON_INTERPRET=1 before anything imports the kernels. Losses are compared with
``focalkit.testing.reference``; gradients with central finite differences of that reference (float64), so
neither side shares code with the kernels. Tensors are small: the interpreter runs every program of
a launch in Python. Launch tiles are shrunk in some tests (monkeypatched heuristics) so that small
inputs still take the multi-program, multi-chunk (online log-sum-exp) and masked-tail code paths.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

from focalkit.testing import reference  # noqa: E402
from focalkit.kernels import _triton as kt  # noqa: E402

pytestmark = pytest.mark.skipif(not kt.triton_available(), reason="no CUDA device and no interpreter")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
GAMMAS = [0.0, 0.5, 2.0, 5.0]
RTOL, ATOL = 1e-5, 1e-6  # float32 arithmetic against float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _dev(*ts: torch.Tensor) -> list[torch.Tensor]:
    return [t.to(DEVICE) for t in ts]


def _close(actual, expected, rtol=RTOL, atol=ATOL) -> None:
    a = actual.detach().double().cpu().numpy() if isinstance(actual, torch.Tensor) else actual
    np.testing.assert_allclose(a, np.asarray(expected, dtype=np.float64), rtol=rtol, atol=atol)


def _sig(x, t, **kw):
    args = dict(labels=False, alpha=0.25, gamma=2.0, ignore_index=None, label_smoothing=0.0,
                reduce=True, compute_grad=True)  # fmt: skip
    args.update(kw)
    return kt.sigmoid_focal_fwd(x, t, **args)


def _soft(x, y, **kw):
    args = dict(alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=0.0, reduce=True,
                compute_grad=True)  # fmt: skip
    args.update(kw)
    return kt.softmax_focal_fwd(x, y, **args)


def _ref_sig_kw(kw: dict) -> dict:
    return dict(alpha=kw.get("alpha", 0.25), gamma=kw.get("gamma", 2.0),
                ignore_index=kw.get("ignore_index"), label_smoothing=kw.get("label_smoothing", 0.0))  # fmt: skip


def _ref_soft_kw(kw: dict) -> dict:
    a = kw.get("alpha")
    return dict(alpha=None if a is None else a.double().cpu().numpy(), gamma=kw.get("gamma", 2.0),
                ignore_index=kw.get("ignore_index", -100), label_smoothing=kw.get("label_smoothing", 0.0))  # fmt: skip


def _fd_sigmoid_grad(x: np.ndarray, t, kw: dict, h: float = 1e-6) -> np.ndarray:
    # The sigmoid loss is elementwise: perturb every element at once and read the per-element loss.
    f = lambda z: reference.sigmoid_focal_loss(z, t, reduction="none", **kw)  # noqa: E731
    return (f(x + h) - f(x - h)) / (2 * h)


def _fd_softmax_grad(x: np.ndarray, y, kw: dict, h: float = 1e-6) -> np.ndarray:
    # Positions are independent: perturb class c at every position at once.
    g = np.zeros_like(x)
    for c in range(x.shape[1]):
        e = np.zeros_like(x)
        e[:, c] = h
        lp = reference.softmax_focal_loss(x + e, y, reduction="none", **kw)
        lm = reference.softmax_focal_loss(x - e, y, reduction="none", **kw)
        g[:, c] = (lp - lm) / (2 * h)
    return g


def _autograd_softmax_grad(x: torch.Tensor, y: torch.Tensor, gamma: float, ls: float) -> np.ndarray:
    # Float64 autograd through the textbook formula: for class counts too large for finite differences.
    xd = x.detach().double().cpu().requires_grad_()
    logp = torch.log_softmax(xd, dim=1)
    t = F.one_hot(y.cpu(), x.shape[1]).double() * (1 - ls) + ls / x.shape[1]
    loss = -(t * (1 - logp.exp()) ** gamma * logp).sum()
    (g,) = torch.autograd.grad(loss, xd)
    return g.numpy()


def _check_sigmoid(x, t, *, grad_rtol=RTOL, grad_atol=ATOL, loss_rtol=RTOL, **kw):
    """Kernel vs reference: per-element loss, sum, count and gradient."""
    x, t = _dev(x, t)
    rkw = _ref_sig_kw(kw)
    xd = x.double().cpu().numpy()
    tn = t.cpu()
    ref_none = reference.sigmoid_focal_loss(xd, tn, reduction="none", **rkw)
    loss, count, grad = _sig(x, t, reduce=False, **kw)
    assert loss.dtype == torch.float32 and loss.shape == x.shape
    _close(loss, ref_none, rtol=loss_rtol)
    s, count2, grad2 = _sig(x, t, reduce=True, **kw)
    assert s.dtype == torch.float32 and s.dim() == 0
    _close(s, ref_none.sum(), rtol=max(loss_rtol, 1e-5), atol=1e-5)
    assert count.dtype == torch.int64 and int(count) == int(count2)
    if kw.get("labels"):
        ign = kw.get("ignore_index")
        valid_pos = np.ones(tn.shape, bool) if ign is None else tn.numpy() != ign
        assert int(count) == int(valid_pos.sum()) * x.shape[1]
    else:
        ign = kw.get("ignore_index")
        assert int(count) == (x.numel() if ign is None else int((tn != ign).sum()))
    assert grad.dtype == (torch.float32 if x.dtype == torch.float16 else x.dtype) and grad.shape == x.shape
    assert torch.equal(grad, grad2)
    _close(grad, _fd_sigmoid_grad(xd, tn, rkw), rtol=grad_rtol, atol=grad_atol)
    return loss, grad


def _check_softmax(x, y, *, grad_rtol=RTOL, grad_atol=ATOL, loss_rtol=RTOL, fd=True, **kw):
    x, y = _dev(x, y)
    if kw.get("alpha") is not None:
        kw["alpha"] = kw["alpha"].to(DEVICE)
    rkw = _ref_soft_kw(kw)
    xd = x.double().cpu().numpy()
    yn = y.cpu()
    ref_none = reference.softmax_focal_loss(xd, yn, reduction="none", **rkw)
    loss, count, grad = _soft(x, y, reduce=False, **kw)
    assert loss.dtype == torch.float32 and loss.shape == y.shape
    _close(loss, ref_none, rtol=loss_rtol)
    s, count2, grad2 = _soft(x, y, reduce=True, **kw)
    assert s.dtype == torch.float32 and s.dim() == 0
    _close(s, ref_none.sum(), rtol=max(loss_rtol, 1e-5), atol=1e-5)
    assert count.dtype == torch.int64
    assert int(count) == int(count2) == int((yn != kw.get("ignore_index", -100)).sum())
    assert grad.dtype == (torch.float32 if x.dtype == torch.float16 else x.dtype) and grad.shape == x.shape
    assert torch.equal(grad, grad2)
    if fd:
        _close(grad, _fd_softmax_grad(xd, yn, rkw), rtol=grad_rtol, atol=grad_atol)
    return loss, grad


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiny launch tiles: many programs, several class chunks, masked tails even on small inputs."""
    monkeypatch.setattr(kt, "_sigmoid_block", lambda numel: (16, 4))
    monkeypatch.setattr(kt, "_softmax_tiles", lambda c, inner, positions: (4, 4, 4))


# --- sigmoid, dense float targets ----------------------------------------------------------------------


@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_dense_hard_targets(gamma):
    g = _gen(1)
    x = torch.randn(3, 5, 37, generator=g) * 4
    t = (torch.rand(3, 5, 37, generator=g) < 0.3).float()
    _check_sigmoid(x, t, gamma=gamma, alpha=0.25)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.75])
def test_sigmoid_dense_soft_targets_and_label_smoothing(gamma, alpha):
    g = _gen(2)
    x = torch.randn(2, 300, generator=g) * 3
    t = torch.rand(2, 300, generator=g)
    _check_sigmoid(x, t, gamma=gamma, alpha=alpha)
    _check_sigmoid(x, (t > 0.5).float(), gamma=gamma, alpha=alpha, label_smoothing=0.1)


@pytest.mark.parametrize("tdtype", [torch.float32, torch.float64, torch.float16])
def test_sigmoid_dense_ignore_index(tdtype):
    g = _gen(3)
    x = torch.randn(4, 250, generator=g) * 3
    t = (torch.rand(4, 250, generator=g) < 0.5).to(tdtype)
    t[torch.rand(4, 250, generator=g) < 0.2] = -1
    loss, grad = _check_sigmoid(x, t, gamma=2.0, ignore_index=-1, label_smoothing=0.05)
    ign = (t == -1).to(DEVICE)
    assert torch.all(loss[ign] == 0) and torch.all(grad[ign] == 0)


def test_sigmoid_dense_many_programs(small_tiles):
    g = _gen(4)
    x = torch.randn(7, 45, generator=g) * 3  # 315 elements: 20 programs of 16, a masked tail
    t = torch.rand(7, 45, generator=g)
    t[0, :3] = -100
    _check_sigmoid(x, t, gamma=0.5, ignore_index=-100, alpha=0.4)


# --- sigmoid, integer labels ---------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_labels_nc(gamma):
    g = _gen(5)
    x = torch.randn(60, 7, generator=g) * 3
    y = torch.randint(0, 8, (60,), generator=g)  # 7 = background
    y[:5] = 7
    _check_sigmoid(x, y, labels=True, gamma=gamma)


@pytest.mark.parametrize("ydtype", [torch.int64, torch.int32, torch.uint8])
def test_sigmoid_labels_nchw_ignore(ydtype, small_tiles):
    g = _gen(6)
    x = torch.randn(2, 5, 6, 7, generator=g) * 3
    y = torch.randint(0, 6, (2, 6, 7), generator=g)
    y[0, 0, :4] = 255
    loss, grad = _check_sigmoid(
        x, y.to(ydtype), labels=True, gamma=2.0, ignore_index=255, label_smoothing=0.1
    )
    ign = (y == 255).unsqueeze(1).expand_as(x).to(DEVICE)
    assert torch.all(loss[ign] == 0) and torch.all(grad[ign] == 0)


def test_sigmoid_labels_match_dense_one_hot():
    g = _gen(7)
    x = torch.randn(3, 4, 5, 6, generator=g)
    y = torch.randint(0, 5, (3, 5, 6), generator=g)  # 4 = background
    dense = F.one_hot(y, 5)[..., :4].movedim(-1, 1).float()
    x, y, dense = _dev(x, y, dense)
    a = _sig(x, y, labels=True, reduce=False)
    b = _sig(x, dense, labels=False, reduce=False)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    torch.testing.assert_close(a[2], b[2], rtol=0, atol=0)


# --- softmax --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", GAMMAS)
def test_softmax_nc(gamma):
    g = _gen(8)
    x = torch.randn(40, 9, generator=g) * 3
    y = torch.randint(0, 9, (40,), generator=g)
    y[3] = -100
    _check_softmax(x, y, gamma=gamma)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_softmax_nchw_alpha_smoothing_ignore(gamma):
    g = _gen(9)
    x = torch.randn(2, 5, 6, 7, generator=g) * 3
    y = torch.randint(0, 5, (2, 6, 7), generator=g)
    y[1, 2, :3] = 255
    alpha = torch.rand(5, generator=g) + 0.1
    _check_softmax(x, y, gamma=gamma, alpha=alpha, ignore_index=255)
    _check_softmax(x, y, gamma=gamma, alpha=alpha, ignore_index=255, label_smoothing=0.1)
    loss, grad = _check_softmax(x, y, gamma=gamma, ignore_index=255, label_smoothing=0.2)
    ign = (y == 255).to(DEVICE)
    assert torch.all(loss[ign] == 0)
    assert torch.all(grad.movedim(1, -1)[ign] == 0)


@pytest.mark.parametrize("smooth", [0.0, 0.1])
@pytest.mark.parametrize("shape", [(9, 11), (2, 11, 3, 5), (2, 6, 9)])
def test_softmax_multi_chunk_online_lse(small_tiles, shape, smooth):
    # 11 classes in chunks of 4 (masked last chunk), positions in blocks of 4.
    g = _gen(10)
    x = torch.randn(*shape, generator=g) * 4
    x[0, -1] = 30.0  # the maximum in the last chunk: the running max must be rescaled
    y = torch.randint(0, shape[1], shape[:1] + shape[2:], generator=g)
    y.view(-1)[1] = -100
    alpha = torch.rand(shape[1], generator=g)
    _check_softmax(x, y, gamma=2.0, alpha=alpha, label_smoothing=smooth)
    _check_softmax(x, y, gamma=0.5, label_smoothing=smooth)


def test_softmax_ties_and_large_class_count():
    g = _gen(11)
    x = torch.randn(3, 1500, generator=g)  # more than one 1024-class chunk with default tiles
    x[0, :] = 0.0  # all classes tied
    x[1, 10] = x[1, 1200] = 8.0  # a tie for the maximum across chunks
    y = torch.tensor([5, 1200, 3])
    for ls in (0.0, 0.1):
        _, grad = _check_softmax(x, y, gamma=2.0, label_smoothing=ls, fd=False)
        _close(grad, _autograd_softmax_grad(x, y, 2.0, ls))


def test_softmax_no_transpose_layout_equivalence():
    # (N, C, H, W) in place == the same data as (N*H*W, C) rows.
    g = _gen(12)
    x = torch.randn(2, 6, 4, 5, generator=g)
    y = torch.randint(0, 6, (2, 4, 5), generator=g)
    x, y = _dev(x, y)
    a = _soft(x, y, reduce=False, label_smoothing=0.1)
    b = _soft(x.movedim(1, -1).reshape(-1, 6), y.reshape(-1), reduce=False, label_smoothing=0.1)
    torch.testing.assert_close(a[0].reshape(-1), b[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(a[2].movedim(1, -1).reshape(-1, 6), b[2], rtol=1e-6, atol=1e-7)


# --- gamma = 0 is cross-entropy ------------------------------------------------------------------------


def test_gamma_zero_is_bce_with_logits():
    g = _gen(13)
    x = (torch.randn(5, 33, generator=g) * 3).to(DEVICE).requires_grad_()
    t = torch.rand(5, 33, generator=g).to(DEVICE)
    ref = F.binary_cross_entropy_with_logits(x, t, reduction="sum")
    (ref_grad,) = torch.autograd.grad(ref, x)
    loss, _, grad = _sig(x.detach(), t, alpha=None, gamma=0.0)
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("smooth", [0.0, 0.15])
@pytest.mark.parametrize("layout", ["nc", "nchw"])
def test_gamma_zero_is_cross_entropy(smooth, layout):
    g = _gen(14)
    shape = (30, 7) if layout == "nc" else (2, 7, 4, 5)
    x = (torch.randn(*shape, generator=g) * 3).to(DEVICE).requires_grad_()
    y = torch.randint(0, 7, shape[:1] + shape[2:], generator=g)
    y.view(-1)[:2] = -100
    y = y.to(DEVICE)
    w = (torch.rand(7, generator=g) + 0.5).to(DEVICE)
    ref = F.cross_entropy(x, y, weight=w, reduction="sum", label_smoothing=smooth)
    (ref_grad,) = torch.autograd.grad(ref, x)
    loss, count, grad = _soft(x.detach(), y, alpha=w, gamma=0.0, label_smoothing=smooth)
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-6)
    assert int(count) == int((y != -100).sum())


# --- half precision --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,grad_rtol", [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)])
def test_half_inputs(dtype, grad_rtol):
    # Loss in float32 from the rounded logits: float32 tolerance; the gradient is rounded to dtype.
    g = _gen(15)
    x = (torch.randn(3, 6, 5, 4, generator=g) * 3).to(dtype)
    t = torch.rand(3, 6, 5, 4, generator=g)
    y = torch.randint(0, 7, (3, 5, 4), generator=g)
    tol = dict(grad_rtol=grad_rtol, grad_atol=1e-4)
    _check_sigmoid(x, t, gamma=2.0, **tol)
    _check_sigmoid(x, y, labels=True, gamma=0.5, ignore_index=6, **tol)
    _check_softmax(x, y.clamp(max=5), gamma=2.0, label_smoothing=0.1, **tol)
    _check_softmax(x.reshape(18, 20), torch.randint(0, 20, (18,), generator=g), gamma=5.0, **tol)


# --- extreme values -------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_extreme_logits(gamma):
    x = torch.tensor([1e4, -1e4, 1e4, -1e4, 80.0, -80.0, 30.0, -30.0, 0.0])
    t = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    loss, _, grad = _sig(*_dev(x, t), alpha=0.25, gamma=gamma, reduce=False)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    _close(loss, reference.sigmoid_focal_loss(x.double(), t.double(), alpha=0.25, gamma=gamma,
                                              reduction="none"))  # fmt: skip
    # Saturated: right with confidence -> 0; wrong with confidence -> -/+ alpha_t, the CE slope.
    g = grad.cpu()
    assert g[0] == 0 and g[1] == 0
    torch.testing.assert_close(g[2], torch.tensor(0.75), rtol=1e-6, atol=0)
    torch.testing.assert_close(g[3], torch.tensor(-0.25), rtol=1e-6, atol=0)
    # Tiny but non-zero where exp(-30) is representable: relative accuracy, not just absolute.
    xd = x.double().numpy()
    fd = _fd_sigmoid_grad(xd[6:8], t[6:8].double().numpy(), dict(alpha=0.25, gamma=gamma), h=1e-4)
    _close(g[6:8], fd, rtol=1e-4, atol=0)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_softmax_extreme_logits(gamma):
    x = torch.tensor([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [20.0, 0.0, 0.0]])
    y = torch.tensor([0, 1, 2, 0])
    loss, _, grad = _soft(*_dev(x, y), gamma=gamma, reduce=False, label_smoothing=0.0)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    ref = reference.softmax_focal_loss(x.double(), y, gamma=gamma, reduction="none")
    _close(loss, ref)
    # Confident and right: loss (1 - p)^gamma * -log p with 1 - p = 2 exp(-20): relative accuracy
    # (down to float32's normal range; gamma = 5 gives ~5e-51, which underflows to 0).
    if ref[3] > 1e-30:
        _close(loss[3], ref[3], rtol=1e-5, atol=0)
    else:
        assert float(loss[3]) < 1e-30
    _close(grad, _fd_softmax_grad(x.double().numpy(), y, dict(gamma=gamma), h=1e-4), atol=1e-5)
    _, _, grad_s = _soft(*_dev(x, y), gamma=gamma, label_smoothing=0.1)
    assert torch.isfinite(grad_s).all()


# --- empty, all ignored, contiguity, determinism ----------------------------------------------------------


def test_empty_inputs():
    x = torch.empty(0, 4, device=DEVICE)
    loss, count, grad = _sig(x, torch.empty(0, 4, device=DEVICE))
    assert float(loss) == 0 and int(count) == 0 and grad.shape == (0, 4)
    loss, count, grad = _sig(x, torch.empty(0, dtype=torch.long, device=DEVICE), labels=True,
                             reduce=False)  # fmt: skip
    assert loss.shape == (0, 4) and int(count) == 0
    loss, count, grad = _soft(x, torch.empty(0, dtype=torch.long, device=DEVICE))
    assert float(loss) == 0 and int(count) == 0 and grad.shape == (0, 4)
    loss, count, grad = _soft(torch.empty(2, 3, 0, device=DEVICE),
                              torch.empty(2, 0, dtype=torch.long, device=DEVICE), reduce=False)  # fmt: skip
    assert loss.shape == (2, 0) and int(count) == 0


def test_all_ignored():
    g = _gen(16)
    x = torch.randn(6, 5, 3, generator=g).to(DEVICE)
    for loss, count, grad in (
        _sig(x, torch.full((6, 5, 3), -1.0, device=DEVICE), ignore_index=-1),
        _sig(x, torch.full((6, 3), -1, device=DEVICE), labels=True, ignore_index=-1),
        _soft(x, torch.full((6, 3), -100, device=DEVICE), label_smoothing=0.1),
        _soft(x, torch.full((6, 3), -100, device=DEVICE)),
    ):
        assert float(loss) == 0 and int(count) == 0
        assert torch.all(grad == 0)


def test_non_contiguous_inputs():
    g = _gen(17)
    x = torch.randn(5, 8, 3, generator=g).transpose(1, 2)  # (5, 3, 8), not contiguous
    t = torch.rand(5, 8, 3, generator=g).transpose(1, 2)
    _check_sigmoid(x, t, gamma=2.0)
    y = torch.randint(0, 3, (8, 5), generator=g).t()
    _check_softmax(x, y, gamma=2.0)


def test_no_grad_and_deterministic():
    g = _gen(18)
    x = torch.randn(4, 7, 33, generator=g).to(DEVICE)
    y = torch.randint(0, 7, (4, 33), generator=g).to(DEVICE)
    l1, c1, g1 = _soft(x, y, compute_grad=False)
    l2, c2, _ = _soft(x, y)
    assert g1 is None and torch.equal(l1, l2) and torch.equal(c1, c2)
    l3, _, g3 = _sig(x, torch.rand(4, 7, 33, generator=g).to(DEVICE), compute_grad=False)
    assert g3 is None and l3.dim() == 0
    assert torch.equal(_soft(x, y)[0], _soft(x, y)[0])  # fixed-order partial sums: bitwise equal


# --- bad input -------------------------------------------------------------------------------------------


def test_bad_input():
    x = torch.randn(4, 3, device=DEVICE)
    y = torch.zeros(4, dtype=torch.long, device=DEVICE)
    with pytest.raises(TypeError, match="x must be"):
        _sig(x.double(), torch.rand(4, 3, device=DEVICE, dtype=torch.float64))
    with pytest.raises(TypeError, match="x must be"):
        _soft([[1.0]], y)
    with pytest.raises(ValueError, match="targets must have x's shape"):
        _sig(x, torch.rand(4, 2, device=DEVICE))
    with pytest.raises(ValueError, match="targets must have shape"):
        _sig(x, torch.zeros(3, dtype=torch.long, device=DEVICE), labels=True)
    with pytest.raises(TypeError, match="targets must be an integer"):
        _sig(x, torch.zeros(4, device=DEVICE), labels=True)
    with pytest.raises(ValueError, match="class-probability targets must have x's shape"):
        _soft(x, torch.zeros(4, device=DEVICE))  # floats are class probabilities: of x's shape
    with pytest.raises(TypeError, match="targets must be an integer"):
        _soft(x, torch.zeros(4, dtype=torch.bool, device=DEVICE))
    with pytest.raises(ValueError, match="targets must have shape"):
        _soft(x, torch.zeros(4, 3, dtype=torch.long, device=DEVICE))
    with pytest.raises(ValueError, match=r"x must be \(N, C\)"):
        _soft(torch.randn(4, device=DEVICE), y)
    with pytest.raises(ValueError, match="alpha must have shape"):
        _soft(x, y, alpha=torch.ones(4))
    with pytest.raises(TypeError, match="alpha must be a float"):
        _sig(x, torch.rand(4, 3, device=DEVICE), alpha=torch.ones(3))
    with pytest.raises(ValueError, match="gamma"):
        _sig(x, torch.rand(4, 3, device=DEVICE), gamma=-1.0)
    with pytest.raises(ValueError, match="gamma"):
        _soft(x, y, gamma=float("nan"))
    with pytest.raises(ValueError, match="label_smoothing"):
        _soft(x, y, label_smoothing=1.5)


_SUBPROCESS = textwrap.dedent(
    """
    import os, sys
    os.environ.pop("TRITON_INTERPRET", None)
    sys.modules["triton"] = None  # importing triton fails from here on
    import torch
    import focalkit as fk
    x = torch.randn(4, 3, requires_grad=True)
    fk.sigmoid_focal_loss(x, torch.rand(4, 3)).backward()  # the core works without triton
    assert x.grad is not None
    from focalkit.kernels import _triton as kt
    assert not kt.triton_available()
    try:
        kt.softmax_focal_fwd(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), alpha=None,
                             gamma=2.0, ignore_index=-100, label_smoothing=0.0, reduce=True,
                             compute_grad=True)
    except RuntimeError as e:
        assert "triton" in str(e), e
    else:
        raise AssertionError("no error without triton")
    # Triton installed but no interpreter: CPU tensors are refused with a clear message.
    for name in [m for m in sys.modules if m == "triton" or m.startswith("focalkit.kernels._triton")]:
        del sys.modules[name]
    import importlib
    kt2 = importlib.import_module("focalkit.kernels._triton")  # a fresh copy, with triton
    assert kt2 is not kt
    if not torch.cuda.is_available():
        assert not kt2.triton_available()
        try:
            kt2.sigmoid_focal_fwd(torch.zeros(3), torch.zeros(3), labels=False, alpha=None,
                                  gamma=2.0, ignore_index=None, label_smoothing=0.0, reduce=True,
                                  compute_grad=True)
        except RuntimeError as e:
            assert "TRITON_INTERPRET" in str(e), e
        else:
            raise AssertionError("no error on CPU without the interpreter")
    print("ok")
    """
)


def test_without_triton_or_interpreter():
    """The core works without triton; this module imports without it and fails clearly when called."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, "-c", _SUBPROCESS], capture_output=True, text=True, env=env,
                       timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok")


def test_only_the_kernel_module_imports_triton():
    """Only kernels/_triton_kernels.py (the @triton.jit kernels) imports triton; the host side does not."""
    import re
    from pathlib import Path

    import focalkit

    root = Path(focalkit.__file__).parent
    pattern = re.compile(r"^\s*(import triton|from triton)", re.M)
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if p.name != "_triton_kernels.py" and pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    assert pattern.search((root / "kernels" / "_triton_kernels.py").read_text(encoding="utf-8"))


def test_int64_offsets_path(monkeypatch):
    # Inputs past 2**31 elements switch the kernels to int64 offsets; force that path on small ones.
    monkeypatch.setattr(kt, "_INT32_LIMIT", 0)
    g = _gen(19)
    x = torch.randn(3, 5, 4, 6, generator=g) * 3
    y = torch.randint(0, 6, (3, 4, 6), generator=g)
    _check_sigmoid(x, y, labels=True, gamma=2.0, ignore_index=5)
    _check_sigmoid(x, torch.rand(3, 5, 4, 6, generator=g), gamma=0.5)
    _check_softmax(x, y.clamp(max=4), gamma=2.0, label_smoothing=0.1)
    _check_softmax(x.reshape(12, 30), torch.randint(0, 30, (12,), generator=g), gamma=2.0)


_AOT = textwrap.dedent(
    """
    import os
    os.environ.pop("TRITON_INTERPRET", None)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from focalkit.kernels import _triton as kt
    from focalkit.kernels import _triton_kernels as K

    def compile_(fn, sig, cons, num_warps):
        ptr16 = {(i,): [["tt.divisibility", 16]] for i, v in enumerate(sig.values()) if v[0] == "*"}
        src = ASTSource(fn=fn, signature=sig, constexprs=cons, attrs=ptr16)
        k = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps})
        assert ".entry" in k.asm["ptx"]

    sig = dict(x_ptr="*fp32", t_ptr="*fp32", loss_ptr="*fp32", grad_ptr="*fp32", psum_ptr="*fp32",
               pcnt_ptr="*i32", numel="i32", C="i32", inner="i32", alpha="fp32", gamma="fp32",
               ignore_f="fp32", ignore_i="i32", ls="fp32", s_ptr="*fp32",
               **{k: "fp32" for k in ("eps", "gneg", "clip", "th0", "th1", "th2", "th3",
                                      "gv0", "gv1", "gv2", "gv3", "gv4")})
    base = dict(LABELS=False, HAS_IGNORE=False, HAS_ALPHA=True, SMOOTH=False, GAMMA_ZERO=False,
                REDUCE=True, WRITE_GRAD=True, WIDE=False, BLOCK=2048,
                KIND=0, NTH=0, HAS_EPS=False, CLIP=False, IOU=True, SCORES=False)
    compile_(K.sigmoid_focal_kernel, sig, base, 8)
    compile_(K.sigmoid_focal_kernel, dict(sig, x_ptr="*bf16", grad_ptr="*bf16", t_ptr="*i64"),
             dict(base, LABELS=True, HAS_IGNORE=True, SMOOTH=True, REDUCE=False, WIDE=True), 8)
    # the focal family: Poly-1 with a piecewise gamma, ASL, QFL, VFL with class indices and scores
    compile_(K.sigmoid_focal_kernel, sig, dict(base, NTH=4, HAS_EPS=True), 8)
    compile_(K.sigmoid_focal_kernel, sig, dict(base, GAMMA_ZERO=True, HAS_EPS=True), 8)
    compile_(K.sigmoid_focal_kernel, sig, dict(base, KIND=1, HAS_ALPHA=False, CLIP=True), 8)
    compile_(K.sigmoid_focal_kernel, sig, dict(base, KIND=1, HAS_ALPHA=False), 8)
    compile_(K.sigmoid_focal_kernel, sig, dict(base, KIND=2, HAS_ALPHA=False), 8)
    compile_(K.sigmoid_focal_kernel, dict(sig, t_ptr="*i64"),
             dict(base, KIND=3, LABELS=True, SCORES=True, IOU=False), 8)
    sig = dict(x_ptr="*fp16", y_ptr="*i64", alpha_ptr="*fp32", loss_ptr="*fp32", grad_ptr="*fp16",
               psum_ptr="*fp32", pcnt_ptr="*i32", P="i32", C="i32", inner="i32", n_sblocks="i32",
               gamma="fp32", ignore_i="i32", ls="fp32",
               **{k: "fp32" for k in ("eps", "th0", "th1", "th2", "th3", "gv0", "gv1", "gv2", "gv3", "gv4")})
    base = dict(ROWS=False, HAS_ALPHA=True, SMOOTH=True, SOFT=False, FULL=True, GAMMA_ZERO=False,
                REDUCE=True, WRITE_GRAD=True, SINGLE=True, WIDE=False, BLOCK_P=128, BLOCK_C=32,
                NTH=0, HAS_EPS=False)
    compile_(K.softmax_focal_kernel, sig, base, 8)
    compile_(K.softmax_focal_kernel, dict(sig, x_ptr="*fp32", grad_ptr="*fp32"),
             dict(base, ROWS=True, SINGLE=False, SMOOTH=False, FULL=False, BLOCK_P=4, BLOCK_C=1024), 8)
    # class-probability targets (y_ptr holds them), single chunk and chunked
    compile_(K.softmax_focal_kernel, dict(sig, y_ptr="*fp32"), dict(base, SOFT=True, SMOOTH=False), 8)
    compile_(K.softmax_focal_kernel, dict(sig, x_ptr="*bf16", grad_ptr="*bf16", y_ptr="*bf16"),
             dict(base, ROWS=True, SOFT=True, SINGLE=False, BLOCK_P=4, BLOCK_C=1024), 8)
    # the focal family: Poly-1 and a piecewise gamma, full distribution (one chunk, chunked) and hard
    compile_(K.softmax_focal_kernel, sig, dict(base, NTH=2, HAS_EPS=True), 8)
    compile_(K.softmax_focal_kernel, dict(sig, y_ptr="*fp32"),
             dict(base, ROWS=True, SOFT=True, SINGLE=False, NTH=1, HAS_EPS=True, BLOCK_P=4, BLOCK_C=1024), 8)
    compile_(K.softmax_focal_kernel, dict(sig, x_ptr="*fp32", grad_ptr="*fp32"),
             dict(base, ROWS=True, SINGLE=False, SMOOTH=False, FULL=False, NTH=4, HAS_EPS=True,
                  BLOCK_P=4, BLOCK_C=1024), 8)
    compile_(K.softmax_focal_kernel, sig, dict(base, SMOOTH=False, FULL=False, GAMMA_ZERO=True, HAS_EPS=True), 8)
    # On a GPU the launches go through torch.library.wrap_triton (for triton_op / torch.compile).
    w = kt._launcher(K.softmax_focal_kernel)
    assert getattr(w, "kernel", w) is K.softmax_focal_kernel
    print("ok")
    """
)


def test_kernels_compile_for_h100():
    """The interpreter is lenient; compiling to sm_90 PTX/cubin (no GPU needed) checks the real path."""
    import triton.backends

    if "nvidia" not in getattr(triton.backends, "backends", {}):
        pytest.skip("this Triton has no NVIDIA backend")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, "-c", _AOT], capture_output=True, text=True, env=env,
                       timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().endswith("ok")


@pytest.mark.skipif(not kt._interpreting(), reason="the examples use CPU tensors (interpreter)")
def test_docstring_examples():
    import doctest

    failed, attempted = doctest.testmod(kt, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted >= 4 and failed == 0


# --- random cases ----------------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_CASE = st.fixed_dictionaries(
    {
        "n": st.integers(1, 5),
        "c": st.integers(1, 12),
        "d": st.lists(st.integers(1, 6), min_size=0, max_size=2),
        "gamma": st.sampled_from([0.0, 0.25, 1.0, 1.5, 2.0, 3.0]),
        "ls": st.sampled_from([0.0, 0.05, 0.3]),
        "scale": st.sampled_from([0.1, 3.0, 30.0]),
        "seed": st.integers(0, 2**16),
    }
)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=_CASE)
def test_random_cases_match_reference(case):
    g = _gen(case["seed"])
    shape = (case["n"], case["c"], *case["d"])
    x = torch.randn(*shape, generator=g) * case["scale"]
    y = torch.randint(-1, case["c"] + 1, (case["n"], *case["d"]), generator=g)  # -1 ignored, c background
    _check_sigmoid(x, y, labels=True, gamma=case["gamma"], ignore_index=-1,
                   label_smoothing=case["ls"])  # fmt: skip
    _check_sigmoid(x, torch.rand(*shape, generator=g), gamma=case["gamma"], alpha=0.6,
                   label_smoothing=case["ls"])  # fmt: skip
    alpha = torch.rand(case["c"], generator=g)
    _check_softmax(x, y.clamp(max=case["c"] - 1), alpha=alpha, gamma=case["gamma"], ignore_index=-1,
                   label_smoothing=case["ls"])  # fmt: skip
