"""The C/OpenMP CPU kernel against the float64 NumPy reference (values and gradients)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import focalkit as fk
from focalkit.backends import closed_form
from focalkit.testing import reference
from focalkit.kernels import cpu

pytestmark = pytest.mark.skipif(not cpu.available(), reason=f"C kernel not built: {cpu.load_error()}")

GAMMAS = [0.0, 0.5, 1.0, 2.0, 3.7]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ref_sigmoid_grad(x, t, **kw):
    """d(sum of loss)/dx of the float64 NumPy reference (finite differences, no focalkit path)."""
    return torch.from_numpy(reference.sigmoid_focal_grad(x, t, reduction="sum", **kw))


def _ref_softmax_grad(x, y, **kw):
    return torch.from_numpy(reference.softmax_focal_grad(x, y, reduction="sum", **kw))


def _np(t):
    return t.detach().double().numpy()


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_sigmoid_dense_matches_reference(gamma, alpha):
    g = _gen(1)
    x = torch.randn(3, 5, 70, generator=g) * 4
    t = torch.rand(3, 5, 70, generator=g)
    t[0, 0, :3] = 1.0
    t[1, 2, :3] = 0.0
    ref = reference.sigmoid_focal_loss(_np(x), _np(t), alpha=alpha, gamma=gamma, reduction="none")
    for reduce in (True, False):
        loss, count, grad = cpu.sigmoid_focal_fwd(
            x, t, labels=False, alpha=alpha, gamma=gamma, ignore_index=None, label_smoothing=0.0,
            reduce=reduce, compute_grad=True,
        )  # fmt: skip
        assert loss.dtype == torch.float32 and count.dtype == torch.int64 and grad.dtype == x.dtype
        assert count.item() == x.numel()
        want = ref.sum() if reduce else ref
        np.testing.assert_allclose(loss.double().numpy(), want, rtol=2e-5, atol=1e-6)
    want_g = _ref_sigmoid_grad(x, t, alpha=alpha, gamma=gamma)
    torch.testing.assert_close(grad.double(), want_g, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("shape", [(40, 6), (2, 6, 5, 9), (3, 6, 11)])
def test_sigmoid_labels_match_one_hot_reference(gamma, shape):
    g = _gen(2)
    x = torch.randn(*shape, generator=g) * 3
    c = shape[1]
    y = torch.randint(0, c + 1, shape[:1] + shape[2:], generator=g)  # c = background
    y.view(-1)[:4] = -1  # ignored positions
    loss, count, grad = cpu.sigmoid_focal_fwd(
        x, y, labels=True, alpha=0.25, gamma=gamma, ignore_index=-1, label_smoothing=0.1,
        reduce=False, compute_grad=True,
    )  # fmt: skip
    ref = reference.sigmoid_focal_loss(
        _np(x), y.numpy(), alpha=0.25, gamma=gamma, ignore_index=-1, label_smoothing=0.1, reduction="none"
    )
    np.testing.assert_allclose(loss.double().numpy(), ref, rtol=2e-5, atol=1e-6)
    assert count.item() == int((y != -1).sum()) * c
    want_g = _ref_sigmoid_grad(x, y, alpha=0.25, gamma=gamma, ignore_index=-1, label_smoothing=0.1)
    torch.testing.assert_close(grad.double(), want_g, rtol=2e-5, atol=1e-6)
    ignored = (y == -1).unsqueeze(1).expand_as(x)
    assert (grad[ignored] == 0).all() and (loss[ignored] == 0).all()


def test_sigmoid_dense_ignore_index():
    g = _gen(3)
    x = torch.randn(500, generator=g)
    t = (torch.rand(500, generator=g) < 0.3).float()
    t[::7] = -1
    loss, count, grad = cpu.sigmoid_focal_fwd(
        x, t, labels=False, alpha=0.25, gamma=2.0, ignore_index=-1, label_smoothing=0.0, reduce=True,
        compute_grad=True,
    )  # fmt: skip
    keep = t != -1
    ref = reference.sigmoid_focal_loss(_np(x[keep]), _np(t[keep]), alpha=0.25, gamma=2.0, reduction="sum")
    np.testing.assert_allclose(loss.item(), ref, rtol=2e-5)
    assert count.item() == int(keep.sum())
    assert (grad[~keep] == 0).all()


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("layout", [(64, 7), (2, 7, 9, 13), (3, 7, 300)])
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_softmax_matches_reference(gamma, layout, ls):
    g = _gen(4)
    x = torch.randn(*layout, generator=g) * 3
    y = torch.randint(0, 7, layout[:1] + layout[2:], generator=g)
    y.view(-1)[::5] = 255
    alpha = torch.rand(7, generator=g) + 0.1
    loss, count, grad = cpu.softmax_focal_fwd(
        x, y, alpha=alpha, gamma=gamma, ignore_index=255, label_smoothing=ls, reduce=False,
        compute_grad=True,
    )  # fmt: skip
    ref = reference.softmax_focal_loss(
        _np(x), y.numpy(), alpha=alpha.double().numpy(), gamma=gamma, ignore_index=255,
        label_smoothing=ls, reduction="none",
    )  # fmt: skip
    np.testing.assert_allclose(loss.double().numpy(), ref, rtol=2e-5, atol=1e-6)
    assert count.item() == int((y != 255).sum())
    want_g = _ref_softmax_grad(x, y, alpha=alpha, gamma=gamma, ignore_index=255, label_smoothing=ls)
    torch.testing.assert_close(grad.double(), want_g, rtol=2e-5, atol=2e-6)


def test_reduced_sum_equals_per_element_sum_and_no_grad_path():
    g = _gen(5)
    x = torch.randn(4, 19, 16, 16, generator=g)
    y = torch.randint(0, 19, (4, 16, 16), generator=g)
    kw = dict(alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=0.0)
    s, c1, gr = cpu.softmax_focal_fwd(x, y, reduce=True, compute_grad=False, **kw)
    per, c2, _ = cpu.softmax_focal_fwd(x, y, reduce=False, compute_grad=True, **kw)
    assert gr is None and c1 == c2 == 4 * 16 * 16
    torch.testing.assert_close(s, per.sum(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs(dtype):
    g = _gen(6)
    x = (torch.randn(6, 5, 40, generator=g) * 3).to(dtype)
    t = (torch.rand(6, 5, 40, generator=g) < 0.2).float()
    loss, _, grad = cpu.sigmoid_focal_fwd(
        x, t, labels=False, alpha=0.25, gamma=2.0, ignore_index=None, label_smoothing=0.0,
        reduce=True, compute_grad=True,
    )  # fmt: skip
    assert grad.dtype == (torch.float32 if dtype == torch.float16 else dtype)  # kernel contract
    ref = reference.sigmoid_focal_loss(_np(x), _np(t), alpha=0.25, gamma=2.0, reduction="sum")
    np.testing.assert_allclose(loss.item(), ref, rtol=1e-5)  # math in fp32 on the rounded inputs
    want_g = _ref_sigmoid_grad(x.float(), t, alpha=0.25, gamma=2.0)
    torch.testing.assert_close(grad.double(), want_g, rtol=1e-2, atol=1e-3)
    y = torch.randint(0, 5, (6, 40), generator=g)
    sl, _, sg = cpu.softmax_focal_fwd(
        x, y, alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=0.0, reduce=True,
        compute_grad=True,
    )  # fmt: skip
    ref = reference.softmax_focal_loss(_np(x), y.numpy(), gamma=2.0, reduction="sum")
    np.testing.assert_allclose(sl.item(), ref, rtol=1e-5)
    assert sg.dtype == (torch.float32 if dtype == torch.float16 else dtype)


def _exact_sigmoid_focal(x: float, t: float, gamma: float) -> float:
    """The sigmoid focal loss (no alpha) in 50-digit decimal arithmetic: the truth for extreme logits,
    where even float64 formulas lose digits (log(1 + e) for e = exp(-30) keeps only 3 of them)."""
    from decimal import Decimal, getcontext

    getcontext().prec = 50
    e = Decimal(-abs(x)).exp()
    p = 1 / (1 + e) if x >= 0 else e / (1 + e)
    ce = max(Decimal(x), Decimal(0)) - Decimal(x) * Decimal(t) + (1 + e).ln()
    q = p * (1 - Decimal(t)) + (1 - p) * Decimal(t)
    mod = Decimal(1) if gamma == 0 else (q ** Decimal(gamma) if q > 0 else Decimal(0))
    return float(mod * ce)


def test_extreme_logits_are_finite_and_exact():
    x = torch.tensor([-1e4, -100.0, -30.0, -1e-6, 0.0, 1e-6, 30.0, 100.0, 1e4])
    for t in (torch.zeros_like(x), torch.ones_like(x)):
        for gamma in (0.0, 0.5, 2.0):
            loss, _, grad = cpu.sigmoid_focal_fwd(
                x, t, labels=False, alpha=None, gamma=gamma, ignore_index=None,
                label_smoothing=0.0, reduce=False, compute_grad=True,
            )  # fmt: skip
            assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
            exact = [_exact_sigmoid_focal(float(a), float(b), gamma) for a, b in zip(x, t)]
            # relative accuracy down to float32's normal range (losses of 1e-20 at x = -30 included)
            np.testing.assert_allclose(loss.double().numpy(), exact, rtol=2e-5, atol=1e-37)
    xs = torch.tensor([[1e4, -1e4, 0.0], [-50.0, 50.0, 0.0]])
    loss, _, grad = cpu.softmax_focal_fwd(
        xs, torch.tensor([0, 0]), alpha=None, gamma=0.5, ignore_index=-100, label_smoothing=0.0,
        reduce=False, compute_grad=True,
    )  # fmt: skip
    assert torch.isfinite(grad).all()
    ref = reference.softmax_focal_loss(_np(xs), np.array([0, 0]), gamma=0.5, reduction="none")
    np.testing.assert_allclose(loss.double().numpy(), ref, rtol=2e-5)


def test_all_ignored_and_empty():
    x = torch.randn(3, 4, 5)
    y = torch.full((3, 5), -100)
    loss, count, grad = cpu.softmax_focal_fwd(
        x, y, alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=0.0, reduce=True,
        compute_grad=True,
    )  # fmt: skip
    assert loss.item() == 0.0 and count.item() == 0 and (grad == 0).all()
    e = torch.empty(0, 4)
    loss, count, grad = cpu.softmax_focal_fwd(
        e, torch.empty(0, dtype=torch.long), alpha=None, gamma=2.0, ignore_index=-100,
        label_smoothing=0.0, reduce=True, compute_grad=True,
    )  # fmt: skip
    assert loss.item() == 0.0 and count.item() == 0 and grad.shape == (0, 4)


def test_large_tensor_uses_threads_and_matches_eager():
    g = _gen(7)
    x = torch.randn(300_000, generator=g)
    t = (torch.rand(300_000, generator=g) < 0.1).float()
    kw = dict(labels=False, alpha=0.25, gamma=2.0, ignore_index=None, label_smoothing=0.0,
              reduce=True, compute_grad=True)  # fmt: skip
    a = cpu.sigmoid_focal_fwd(x, t, **kw)
    b = closed_form.sigmoid_focal_fwd(x.double(), t.double(), **kw)
    np.testing.assert_allclose(a[0].item(), b[0].item(), rtol=1e-5)
    torch.testing.assert_close(a[2].double(), b[2], rtol=1e-5, atol=1e-7)


def test_bad_input_errors():
    x = torch.randn(4, 3)
    kw = dict(alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=0.0, reduce=True, compute_grad=True)
    with pytest.raises(ValueError, match=r"targets: 1 class index\(es\) outside \[0, 2\]"):
        cpu.softmax_focal_fwd(x, torch.tensor([0, 1, 3, 2]), **kw)
    with pytest.raises(ValueError, match=r"targets: 2 class index\(es\) outside \[0, 3\]"):
        cpu.sigmoid_focal_fwd(x, torch.tensor([0, 4, -2, 3]), labels=True, **{**kw, "ignore_index": None})
    with pytest.raises(ValueError, match="ignore_index must fit in int64"):
        cpu.softmax_focal_fwd(x, torch.tensor([0, 1, 2, 2]), **{**kw, "ignore_index": 2**70})
    with pytest.raises(ValueError, match="targets"):
        cpu.softmax_focal_fwd(x, torch.tensor([0, 1]), **kw)
    with pytest.raises(TypeError, match="x must be"):
        cpu.softmax_focal_fwd(x.double(), torch.tensor([0, 1, 2, 2]), **kw)
    with pytest.raises(ValueError, match="class-probability targets must have x's shape"):
        cpu.softmax_focal_fwd(x, torch.rand(4), **kw)  # floats are class probabilities
    with pytest.raises(TypeError, match="integer"):
        cpu.softmax_focal_fwd(x, torch.ones(4, dtype=torch.bool), **kw)
    with pytest.raises(ValueError, match="alpha"):
        cpu.softmax_focal_fwd(x, torch.tensor([0, 1, 2, 2]), **{**kw, "alpha": torch.ones(4)})
    skw = dict(alpha=None, gamma=2.0, ignore_index=None, label_smoothing=0.0, reduce=True, compute_grad=True)
    with pytest.raises(ValueError, match="targets"):
        cpu.sigmoid_focal_fwd(x, torch.rand(4, 4), labels=False, **skw)
    with pytest.raises(ValueError, match="targets"):
        cpu.sigmoid_focal_fwd(x, torch.tensor([0, 1]), labels=True, **skw)


def test_gradient_buffer_is_reused_only_when_free():
    x = torch.randn(512, 1024)  # 2 MiB: pooled
    t = torch.zeros_like(x)
    kw = dict(labels=False, alpha=None, gamma=2.0, ignore_index=None, label_smoothing=0.0,
              reduce=True, compute_grad=True)  # fmt: skip
    _, _, g1 = cpu.sigmoid_focal_fwd(x, t, **kw)
    _, _, g2 = cpu.sigmoid_focal_fwd(x, t, **kw)
    assert g1.data_ptr() != g2.data_ptr()  # g1 is still held: never overwritten
    keep = g1.clone()
    del g2
    _, _, g3 = cpu.sigmoid_focal_fwd(x * 2, t, **kw)
    torch.testing.assert_close(g1, keep)
    ptr3 = g3.data_ptr()
    del g3
    _, _, g4 = cpu.sigmoid_focal_fwd(x, t, **kw)
    assert g4.data_ptr() == ptr3  # freed buffer reused
    torch.testing.assert_close(g4, keep)


def test_falls_back_to_eager_when_extension_missing():
    code = (
        "import os; os.environ['FOCALKIT_DISABLE_CPU_KERNEL'] = '1'\n"
        "import torch, focalkit as fk\n"
        "from focalkit.kernels import cpu\n"
        "assert not cpu.available() and 'disabled' in cpu.load_error()\n"
        "assert 'fused' not in fk.available_backends() or torch.cuda.is_available()\n"
        "x = torch.randn(4, 3, requires_grad=True)\n"
        "fk.sigmoid_focal_loss(x, torch.ones(4, 3)).backward()\n"
        "assert x.grad is not None\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_sum_is_deterministic_across_thread_counts(monkeypatch):
    g = _gen(8)
    x = torch.randn(4, 19, 64, 64, generator=g)
    y = torch.randint(0, 19, (4, 64, 64), generator=g)
    xs = x.reshape(-1, 16)
    ts = (torch.rand(xs.shape, generator=g) < 0.1).float()
    out = []
    for nt in (1, 2, 2):
        monkeypatch.setattr(cpu, "_nthreads", lambda nt=nt: nt)
        a = cpu.softmax_focal_fwd(x, y, alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=0.0,
                                  reduce=True, compute_grad=False)[0]  # fmt: skip
        b = cpu.sigmoid_focal_fwd(xs, ts, labels=False, alpha=0.25, gamma=2.0, ignore_index=None,
                                  label_smoothing=0.0, reduce=True, compute_grad=False)[0]  # fmt: skip
        out.append((a.item(), b.item()))
    assert out[0] == out[1] == out[2]
