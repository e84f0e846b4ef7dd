"""The guarantees every sigmoid-family loss shares with the focal loss, on every backend.

asymmetric, quality focal and varifocal: logits of +-1e4 give a finite loss and gradient, float16 /
bfloat16 are computed in float32, empty and all-ignored batches give 0 with a zero gradient,
``weight`` / ``normalizer`` / ``ignore_index`` / the reductions follow the focal loss's rule,
gradcheck and gradgradcheck pass, and the modules keep ``weight`` as a buffer.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import focalkit as fk
from focalkit.testing import reference_family as RF
from loss_helpers import close as _close

pytestmark = pytest.mark.usefixtures("backend")

LOSSES = {
    "asl": (fk.asymmetric_loss, RF.asymmetric_loss, RF.asymmetric_grad, dict(gamma_pos=1.0, gamma_neg=4.0, clip=0.05)),
    "asl-clip0-gneg0": (fk.asymmetric_loss, RF.asymmetric_loss, RF.asymmetric_grad,
                        dict(gamma_pos=0.5, gamma_neg=0.0, clip=0.0)),
    "asl-gamma-below-1": (fk.asymmetric_loss, RF.asymmetric_loss, RF.asymmetric_grad,
                          dict(gamma_pos=0.3, gamma_neg=0.5, clip=0.1)),
    "qfl": (fk.quality_focal_loss, RF.quality_focal_loss, RF.quality_focal_grad, dict(beta=2.0)),
    "qfl-beta-below-1": (fk.quality_focal_loss, RF.quality_focal_loss, RF.quality_focal_grad, dict(beta=0.5)),
    "vfl": (fk.varifocal_loss, RF.varifocal_loss, RF.varifocal_grad, dict(alpha=0.75, gamma=2.0)),
    "vfl-gamma-below-1": (fk.varifocal_loss, RF.varifocal_loss, RF.varifocal_grad,
                          dict(alpha=0.5, gamma=0.5, iou_weighted=False)),
}  # fmt: skip
NAMES = list(LOSSES)


def _loss_and_grad(fn, x: torch.Tensor):
    x = x.detach().clone().requires_grad_(True)
    loss = fn(x)
    loss.sum().backward()
    assert x.grad is not None
    return loss, x.grad


def _finite(*ts: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(t.float()).all()) for t in ts)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_extreme_logits_and_exact_targets_are_finite(name, dtype):
    fn, _, _, kw = LOSSES[name]
    x = torch.tensor([[1e4, -1e4, 0.0, 30.0, -30.0, 1e4], [-1e4, 1e4, -30.0, 5.0, 0.0, -1e4]], dtype=dtype)
    t = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.5, 1.0, 0.3]], dtype=dtype)
    for reduction in ("none", "mean"):
        loss, grad = _loss_and_grad(lambda z: fn(z, t, reduction=reduction, **kw), x)  # noqa: B023
        assert _finite(loss, grad), (loss, grad)
        assert loss.dtype == dtype and grad.dtype == dtype
    # a confidently wrong positive costs about |x| (times its weight): not clamped, not inf
    none = fn(x.float(), t.float(), reduction="none", **kw)
    assert none[1, 0].item() > 1e3


@pytest.mark.parametrize("name", NAMES)
def test_half_precision_matches_float32(name):
    fn, _, _, kw = LOSSES[name]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=g) * 3
    t = torch.rand(6, 5, generator=g)
    t[t < 0.5] = 0.0
    for dtype in (torch.float16, torch.bfloat16):
        xh = x.to(dtype)
        got = fn(xh, t.to(dtype), reduction="sum", **kw)
        want = fn(xh.float(), t.to(dtype).float(), reduction="sum", **kw)
        assert got.dtype == dtype
        assert got.float().item() == pytest.approx(want.item(), rel=1e-2)


@pytest.mark.parametrize("name", NAMES)
def test_reference_with_weight_ignore_index_and_normalizer(name):
    fn, ref, ref_grad, kw = LOSSES[name]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 4, generator=g) * 2
    t = torch.rand(5, 4, generator=g)
    t[t < 0.5] = 0.0
    t[0, :2] = -1.0  # ignored
    w = torch.rand(5, 4, generator=g)
    for extra in (dict(reduction="none"), dict(reduction="sum"), dict(reduction="mean"), dict(normalizer=3.0)):
        args = dict(kw, weight=w, ignore_index=-1, **extra)
        out = fn(x, t, **args)
        _close(out, ref(x, t, **args))
        grad = _loss_and_grad(lambda z: fn(z, t, **args), x)[1]  # noqa: B023
        _close(grad, ref_grad(x, t, **args), rtol=1e-4)
        assert grad[0, :2].abs().max().item() == 0.0
    # mean divides by the non-ignored elements, not by all of them
    s = fn(x, t, ignore_index=-1, reduction="sum", **kw)
    _close(fn(x, t, ignore_index=-1, **kw), s / 18)


@pytest.mark.parametrize("name", NAMES)
def test_empty_and_all_ignored(name):
    fn, _, _, kw = LOSSES[name]
    loss, grad = _loss_and_grad(lambda z: fn(z, torch.zeros(0, 3), **kw), torch.zeros(0, 3))
    assert loss.item() == 0.0 and grad.shape == (0, 3)
    x = torch.randn(3, 4)
    loss, grad = _loss_and_grad(lambda z: fn(z, torch.full((3, 4), -1.0), ignore_index=-1, **kw), x)
    assert loss.item() == 0.0 and grad.abs().max().item() == 0.0
    y = torch.full((3,), 7)  # class indices, every position ignored
    loss, grad = _loss_and_grad(lambda z: fn(z, y, ignore_index=7, **kw), x)
    assert loss.item() == 0.0 and grad.abs().max().item() == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_and_gradgradcheck(name, backend):
    fn, _, _, kw = LOSSES[name]
    g = torch.Generator().manual_seed(2)
    x = (torch.randn(4, 3, generator=g, dtype=torch.float64) * 2).requires_grad_()
    t = torch.rand(4, 3, generator=g, dtype=torch.float64)
    t[t < 0.4] = 0.0
    t[0, 0] = 1.0
    assert torch.autograd.gradcheck(lambda z: fn(z, t, reduction="sum", **kw), (x,))
    assert torch.autograd.gradgradcheck(lambda z: fn(z, t, reduction="sum", **kw), (x,))


def test_reaches_the_dispatcher_with_its_variant(monkeypatch):
    from focalkit import backends

    seen = []
    real = backends.resolve
    monkeypatch.setattr(backends, "resolve", lambda info: seen.append(info) or real(info))
    x = torch.randn(4, 3)
    fk.asymmetric_loss(x, torch.zeros(4, 3), gamma_neg=3.0, clip=0.1)
    fk.quality_focal_loss(x, torch.tensor([0, 1, 3, 2]), scores=torch.rand(4))
    fk.varifocal_loss(x, torch.zeros(4, 3), iou_weighted=False)
    kinds = [(i.variant.kind, i.labels, i.alpha) for i in seen]
    assert kinds == [("asymmetric", False, "none"), ("quality", True, "none"), ("varifocal", False, "float")]
    assert seen[0].variant.gamma_neg == 3.0 and seen[0].variant.clip == 0.1
    assert seen[2].variant.iou_weighted is False


@pytest.mark.parametrize("module, function, kw", [
    (fk.AsymmetricLoss, fk.asymmetric_loss, dict(gamma_pos=1.0, gamma_neg=3.0, clip=0.1)),
    (fk.QualityFocalLoss, fk.quality_focal_loss, dict(beta=1.5)),
    (fk.VarifocalLoss, fk.varifocal_loss, dict(alpha=0.6, gamma=1.0, iou_weighted=False)),
])  # fmt: skip
def test_modules_with_weight_buffer_state_dict_and_to(module, function, kw):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 4, generator=g)
    t = torch.rand(5, 4, generator=g)
    t[t < 0.5] = 0.0
    w = torch.rand(4, generator=g)
    crit = module(weight=w, reduction="sum", **kw)
    assert "weight" in dict(crit.named_buffers())
    for k, v in kw.items():
        assert getattr(crit, k) == v and f"{k}={v!r}" in repr(crit)
    _close(crit(x, t), function(x, t, weight=w, reduction="sum", **kw))
    _close(crit(x, t, weight=torch.ones(4), normalizer=2.0), function(x, t, reduction="sum", normalizer=2.0, **kw))
    restored = module(weight=torch.zeros(4), reduction="sum", **kw)
    restored.load_state_dict(crit.state_dict())
    _close(restored(x, t), crit(x, t))
    crit64 = crit.to(torch.float64)
    assert crit64.weight.dtype == torch.float64
    _close(crit64(x.double(), t.double()), function(x, t, weight=w, reduction="sum", **kw))
    if module is not fk.AsymmetricLoss:
        y = torch.tensor([0, 4, 2, 1, 4])
        s = torch.rand(5, generator=g)
        _close(crit(x, y, scores=s), function(x, y, scores=s, weight=w, reduction="sum", **kw))
