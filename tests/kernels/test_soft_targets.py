"""Class-probability targets of the softmax loss on the fused path (issue 11): mixup, cutmix, distillation.

Runs on every kernel backend available here (the ``kernel`` fixture: the C kernel, and Triton
under the interpreter), and checks that the calls reach the kernel (no eager fallback). References:
the float64 NumPy reference (``focalkit.testing.reference``) for losses and its finite-difference
gradients, and ``F.cross_entropy`` with the same probability targets at gamma = 0.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import focalkit as fk
from focalkit.backends.registry import CallInfo
from focalkit.testing import reference

KERNEL_BACKENDS = [b for b in ("fused", "triton") if b in fk.available_backends()]  # as the fixture's
pytestmark = pytest.mark.skipif(not KERNEL_BACKENDS, reason="no compiled kernel here (C extension or triton)")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _targets(kind: str, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    c = shape[1]
    if kind == "distillation":  # a teacher's softmax
        return torch.softmax(torch.randn(*shape, generator=g) * 2, dim=1)
    pos = (shape[0],) + shape[2:]
    a = F.one_hot(torch.randint(0, c, pos, generator=g), c).movedim(-1, 1).float()
    b = F.one_hot(torch.randint(0, c, pos, generator=g), c).movedim(-1, 1).float()
    lam = torch.rand((shape[0],) + (1,) * (len(shape) - 1), generator=g)
    if kind == "cutmix":  # a per-position choice, one-hot everywhere: many exact zeros
        return torch.where(torch.rand(pos, generator=g).unsqueeze(1) < 0.5, a, b)
    return lam * a + (1 - lam) * b  # mixup


def _loss_grad(x, t, **kw):
    xg = x.clone().requires_grad_()
    loss = fk.softmax_focal_loss(xg, t, reduction="none", **kw)
    (g,) = torch.autograd.grad(loss.sum(), xg)
    return loss.detach(), g


@pytest.mark.parametrize("shape", [(24, 7), (2, 5, 3, 4), (3, 6, 10)])
@pytest.mark.parametrize("kind", ["mixup", "cutmix", "distillation"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_soft_targets_match_the_float64_reference(kernel, shape, kind, gamma, ls):
    g = _gen(1)
    x = torch.randn(*shape, generator=g) * 3
    t = _targets(kind, shape, g)
    alpha = torch.rand(shape[1], generator=g) + 0.1
    kw = dict(gamma=gamma, alpha=alpha, label_smoothing=ls)
    loss, grad = _loss_grad(x, t, **kw)
    rkw = dict(gamma=gamma, alpha=alpha.double().numpy(), label_smoothing=ls)
    xd, td = x.double().numpy(), t.double().numpy()
    want = reference.softmax_focal_loss(xd, td, reduction="none", **rkw)
    np.testing.assert_allclose(loss.double().numpy(), want, rtol=2e-5, atol=1e-6)
    want_g = reference.softmax_focal_grad(xd, td, reduction="sum", **rkw)
    np.testing.assert_allclose(grad.double().numpy(), want_g, rtol=2e-5, atol=2e-6)
    n_pos = x.numel() // shape[1]
    mean = fk.softmax_focal_loss(x, t, **kw)
    np.testing.assert_allclose(float(mean), want.sum() / n_pos, rtol=2e-5)


@pytest.mark.parametrize("ls", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gamma_zero_is_cross_entropy_with_probability_targets(kernel, ls, reduction):
    g = _gen(2)
    x = torch.randn(2, 9, 4, 5, generator=g) * 3
    t = _targets("mixup", x.shape, g)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a = fk.softmax_focal_loss(xa, t, gamma=0.0, label_smoothing=ls, reduction=reduction)
    b = F.cross_entropy(xb, t, label_smoothing=ls, reduction=reduction)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    a.sum().backward()
    b.sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-7)


def test_many_classes_zero_entries_and_extreme_logits(kernel):
    """1500 classes (several Triton chunks), targets with exact zeros and logits at +-1e4 / -inf."""
    g = _gen(3)
    x = torch.randn(4, 1500, generator=g) * 3
    x[0, :3] = torch.tensor([1e4, -1e4, 0.0])
    x[1, 10] = -float("inf")  # a masked class with zero target probability: finite
    t = _targets("cutmix", x.shape, g)
    t[1, 10] = 0.0
    t[2] = torch.softmax(torch.randn(1500, generator=g), 0)
    loss, grad = _loss_grad(x, t, gamma=2.0)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    xs = x.clone()
    xs[1, 10] = -1e30  # the reference's stand-in for -inf
    want = reference.softmax_focal_loss(xs.double().numpy(), t.double().numpy(), gamma=2.0, reduction="none")
    np.testing.assert_allclose(loss.double().numpy(), want, rtol=2e-5, atol=1e-6)
    # -inf of a class with a positive probability: +inf, as F.cross_entropy
    t2 = t.clone()
    t2[1, 10] = 0.1
    assert torch.isposinf(fk.softmax_focal_loss(x, t2, reduction="none")[1])


@pytest.mark.parametrize("xdtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("tdtype", [torch.float32, torch.bfloat16, torch.float64])
def test_logit_and_target_dtypes(kernel, xdtype, tdtype):
    g = _gen(4)
    x = (torch.randn(6, 11, 7, generator=g) * 3).to(xdtype)
    t = _targets("distillation", x.shape, g).to(tdtype)
    loss, grad = _loss_grad(x, t, gamma=2.0)
    assert loss.dtype == xdtype and grad.dtype == xdtype
    # float32 math on the rounded inputs: the float64 reference of those values
    want = reference.softmax_focal_loss(x.double().numpy(), t.double().numpy(), gamma=2.0, reduction="none")
    np.testing.assert_allclose(loss.double().numpy(), want, rtol=1e-2 if xdtype != torch.float32 else 2e-5, atol=1e-5)
    want_g = reference.softmax_focal_grad(x.double().numpy(), t.double().numpy(), gamma=2.0, reduction="sum")
    np.testing.assert_allclose(grad.double().numpy(), want_g, rtol=2e-2, atol=1e-3 if xdtype != torch.float32 else 2e-6)


def test_soft_targets_take_the_fused_path_under_auto():
    """The dispatcher's support predicate accepts them (no eager fallback on a machine with kernels)."""
    from focalkit import backends
    from focalkit.kernels import _fused_supports, cpu

    info = CallInfo(op="softmax", device=torch.device("cpu"), dtype=torch.float32, labels=False, soft=True,
                    alpha="tensor", weight=False, reduce=True)  # fmt: skip
    assert _fused_supports(info) == cpu.available()
    with fk.use_backend("auto"):
        chosen = backends.resolve(info)
    assert (chosen.name == "fused") == cpu.available()
    # the sigmoid loss has no class-probability form: still refused there
    assert not _fused_supports(CallInfo(op="sigmoid", device=torch.device("cpu"), dtype=torch.float32,
                                        labels=False, soft=True, alpha="none", weight=False, reduce=True))  # fmt: skip
