"""The first-call check of the Triton kernels (focalkit.kernels._guard), on CPU under the interpreter."""

from __future__ import annotations

import pytest
import torch

import focalkit as fk
from focalkit.kernels import _guard, triton_available

pytestmark = pytest.mark.skipif(not triton_available(), reason="Triton (or its CPU interpreter) not available")


@pytest.fixture(autouse=True)
def _fresh_verdicts(monkeypatch):
    monkeypatch.setenv("FOCALKIT_TRITON_CHECK", "1")  # conftest.py turns it off for the other tests
    _guard.reset()
    yield
    _guard.reset()


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 5, generator=g, requires_grad=True), torch.randint(0, 5, (8,), generator=g)


def _eager(x, y):
    with fk.use_backend("eager"):
        loss = fk.softmax_focal_loss(x, y)
        (g,) = torch.autograd.grad(loss, x)
    return loss.detach(), g


def test_a_correct_kernel_is_checked_once_then_trusted():
    x, y = _data()
    with fk.use_backend("triton"):
        fk.softmax_focal_loss(x, y).backward()
    assert fk.kernel_status()["triton_checks"] == {"softmax/float32/labels/cpu": "ok"}


@pytest.mark.parametrize("fault", ["wrong", "raises"])
def test_a_failing_kernel_warns_once_and_falls_back_to_eager(monkeypatch, fault):
    from focalkit.kernels import _triton

    real = _triton.softmax_focal_fwd
    calls = []

    def broken(x, targets, **kw):
        calls.append(1)
        if fault == "raises":
            raise RuntimeError("PTX compile failed")
        loss, count, grad = real(x, targets, **kw)
        return loss * 1.01, count, grad  # 1 % off: far beyond float32 rounding

    monkeypatch.setattr(_triton, "softmax_focal_fwd", broken)
    x, y = _data()
    want_loss, want_grad = _eager(x, y)
    with fk.use_backend("triton"):
        with pytest.warns(RuntimeWarning, match="failed its first-call check"):
            loss = fk.softmax_focal_loss(x, y)
        (grad,) = torch.autograd.grad(loss, x)
        torch.testing.assert_close(loss.detach(), want_loss)
        torch.testing.assert_close(grad, want_grad)
        verdict = fk.kernel_status()["triton_checks"]["softmax/float32/labels/cpu"]
        assert verdict.startswith("failed: ") and ("PTX" in verdict or "loss" in verdict)
        n = len(calls)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once: no second warning
            fk.softmax_focal_loss(x, y)
        assert len(calls) == n  # the broken kernel is not called again


def test_the_check_can_be_turned_off(monkeypatch):
    from focalkit.kernels import _triton

    real = _triton.sigmoid_focal_fwd
    monkeypatch.setattr(_triton, "sigmoid_focal_fwd", lambda x, t, **kw: (lambda r: (r[0] * 2, r[1], r[2]))(real(x, t, **kw)))
    monkeypatch.setenv("FOCALKIT_TRITON_CHECK", "0")
    x = torch.randn(4, 3)
    t = (torch.rand(4, 3) > 0.5).float()
    with fk.use_backend("eager"):
        want = fk.sigmoid_focal_loss(x, t)
    with fk.use_backend("triton"):
        got = fk.sigmoid_focal_loss(x, t)
    torch.testing.assert_close(got, want * 2)  # unchecked: the user trusts the kernel
    assert fk.kernel_status()["triton_checks"] == {}


def test_non_finite_logits_are_not_used_for_the_check():
    """A first call with a NaN logit runs the kernel and leaves the variant unchecked (no fallback)."""
    x, y = _data()
    x = x.detach().clone()
    x[2, 1] = float("nan")
    with fk.use_backend("triton"):
        loss = fk.softmax_focal_loss(x, y, reduction="none")
        assert torch.isnan(loss[2]) and torch.isfinite(loss[torch.arange(8) != 2]).all()
        assert fk.kernel_status()["triton_checks"] == {}
        fk.softmax_focal_loss(x.nan_to_num(0.0), y)
    assert fk.kernel_status()["triton_checks"] == {"softmax/float32/labels/cpu": "ok"}


def test_each_member_of_the_focal_family_is_checked_once(monkeypatch):
    """The key names the family member: a plain call's verdict does not vouch for Poly-1 or FLSD-53."""
    from focalkit.kernels import _triton

    x, y = _data()
    with fk.use_backend("triton"):
        fk.softmax_focal_loss(x, y)
        fk.softmax_focal_loss(x, y, epsilon=1.0)
        fk.softmax_focal_loss(x, y, gamma=fk.FLSD53, epsilon=-0.5)
        fk.softmax_focal_loss(x, y, gamma=fk.FLSD53, epsilon=-0.5)  # checked already: no new entry
    assert fk.kernel_status()["triton_checks"] == {
        "softmax/float32/labels/cpu": "ok",
        "softmax/float32/labels/cpu/focal+poly1": "ok",
        "softmax/float32/labels/cpu/focal+poly1+piecewise": "ok",
    }
    # a member whose kernel is wrong falls back to eager, the others keep their kernels
    real = _triton.sigmoid_focal_fwd

    def wrong_for_piecewise(x, t, **kw):
        loss, count, grad = real(x, t, **kw)
        return (loss * 2, count, grad) if hasattr(kw["gamma"], "thresholds") else (loss, count, grad)

    monkeypatch.setattr(_triton, "sigmoid_focal_fwd", wrong_for_piecewise)
    t = torch.nn.functional.one_hot(y, 5).float()
    with fk.use_backend("eager"):
        want = fk.sigmoid_focal_loss(x, t, gamma=fk.FLSD53)
    with fk.use_backend("triton"):
        with pytest.warns(RuntimeWarning, match=r"focal\+piecewise"):
            got = fk.sigmoid_focal_loss(x, t, gamma=fk.FLSD53)
        fk.sigmoid_focal_loss(x, t, epsilon=1.0)
    torch.testing.assert_close(got, want)
    status = fk.kernel_status()["triton_checks"]
    assert status["sigmoid/float32/dense/cpu/focal+piecewise"].startswith("failed: loss")
    assert status["sigmoid/float32/dense/cpu/focal+poly1"] == "ok"
