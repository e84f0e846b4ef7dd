"""The focal family in the compiled kernels: Poly-1, PiecewiseGamma, asymmetric, quality, varifocal.

Each member runs on the C kernel ("fused") and on the Triton kernels (on CPU under the interpreter)
and is checked against the float64 references of ``family_reference.py`` (the contract's formulas,
gradients by float64 autograd): loss and gradient, float32/float16/bfloat16 logits, dense targets and
class indices (with per-position scores for quality / varifocal), ignore_index, both reductions, and
the extremes (logits +-1e4, gamma < 1, epsilon = -1, clip = 0, gamma_neg = 0, targets exactly 0 / 1,
a probability exactly at a threshold).
"""

from __future__ import annotations

import math

import pytest
import torch

import focalkit as fk
from focalkit import backends
from focalkit.backends.registry import CallInfo, Variant
from focalkit.kernels import _kernel_shape_ok, cpu

from family_reference import sigmoid_dense_targets, sigmoid_family, softmax_family

IMPLS = []
if cpu.available():
    IMPLS.append("fused")
if "triton" in fk.available_backends():
    IMPLS.append("triton")


@pytest.fixture(params=IMPLS)
def impl(request):
    """(sigmoid_focal_fwd, softmax_focal_fwd) of one compiled kernel, called directly."""
    if request.param == "fused":
        return cpu.sigmoid_focal_fwd, cpu.softmax_focal_fwd
    from focalkit.kernels import _triton

    return _triton.sigmoid_focal_fwd, _triton.softmax_focal_fwd


SIGMOID_CASES = {
    "poly1": (Variant(epsilon=1.0), 2.0, 0.25),
    "poly1-eps-1-gamma0": (Variant(epsilon=-1.0), 0.0, None),
    "poly1-gamma-half": (Variant(epsilon=2.0), 0.5, 0.25),
    "flsd53": (None, fk.FLSD53, 0.25),
    "piecewise4-poly1": (Variant(epsilon=0.5), fk.PiecewiseGamma([0.1, 0.3, 0.6, 0.9], [4, 3, 0.5, 2, 0]), None),
    "asl": (Variant("asymmetric", gamma_neg=4.0, clip=0.05), 1.0, None),
    "asl-clip0-gneg0": (Variant("asymmetric", gamma_neg=0.0, clip=0.0), 0.0, None),
    "asl-clip0-gneg-half": (Variant("asymmetric", gamma_neg=0.5, clip=0.0), 2.0, None),
    "qfl": (Variant("quality"), 2.0, None),
    "qfl-beta-half": (Variant("quality"), 0.5, None),
    "vfl": (Variant("varifocal"), 2.0, 0.75),
    "vfl-not-iou": (Variant("varifocal", iou_weighted=False), 1.5, 0.75),
    "vfl-gamma-half-no-alpha": (Variant("varifocal"), 0.5, None),
}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _sigmoid_inputs(form: str, dtype: torch.dtype, seed: int = 0):
    g = _gen(seed)
    x = (torch.randn(6, 5, 7, generator=g) * 3).to(dtype)
    if form == "dense":
        t = (torch.rand(6, 5, 7, generator=g) < 0.3).float()
        t[0] = torch.rand(5, 7, generator=g)  # soft targets (quality scores)
        t[1, :, :3] = -1.0  # ignored
        return x, t, dict(labels=False, ignore_index=-1), None
    y = torch.randint(0, 6, (6, 7), generator=g)  # 5 = background
    y[2, :2] = -100
    scores = torch.rand(6, 7, generator=g) if form == "scores" else None
    if scores is not None:
        scores[0, 0], scores[0, 1] = 0.0, 1.0
    return x, y, dict(labels=True, ignore_index=-100), scores


def _tols(dtype: torch.dtype) -> tuple[float, float]:
    # the loss is float32 whatever the dtype; a bfloat16 gradient is stored in bfloat16
    return (2e-2, 1e-3) if dtype == torch.bfloat16 else (1e-4, 2e-6)


# class indices with per-position scores: quality / varifocal only
SIGMOID_FORMS = [
    (case, form)
    for case, (v, _, _) in SIGMOID_CASES.items()
    for form in ("dense", "labels", "scores")
    if form != "scores" or (v is not None and v.kind in ("quality", "varifocal"))
]


@pytest.mark.parametrize("dtype", list(DTYPES), ids=list(DTYPES))
@pytest.mark.parametrize("case,form", SIGMOID_FORMS)
def test_sigmoid_family_matches_the_float64_reference(impl, case, form, dtype):
    variant, gamma, alpha = SIGMOID_CASES[case]
    sig, _ = impl
    dt = DTYPES[dtype]
    x, targets, kw, scores = _sigmoid_inputs(form, dt)
    loss, count, grad = sig(
        x, targets, alpha=alpha, gamma=gamma, label_smoothing=0.0, reduce=False, compute_grad=True,
        variant=variant, **({} if scores is None else {"scores": scores}), **kw,
    )  # fmt: skip
    t, valid = sigmoid_dense_targets(x, targets, labels=kw["labels"], ignore_index=kw["ignore_index"], scores=scores)
    ref_loss, ref_grad = sigmoid_family(x.float(), t, valid, alpha=alpha, gamma=gamma, variant=variant)
    assert loss.dtype == torch.float32 and loss.shape == x.shape
    assert grad.dtype == (torch.float32 if dt == torch.float16 else dt)
    torch.testing.assert_close(loss.double(), ref_loss, rtol=2e-5, atol=1e-6)
    rtol, atol = _tols(dt)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=rtol, atol=atol)
    assert int(count) == int(valid.sum())
    total, count2, none = sig(
        x, targets, alpha=alpha, gamma=gamma, label_smoothing=0.0, reduce=True, compute_grad=False,
        variant=variant, **({} if scores is None else {"scores": scores}), **kw,
    )  # fmt: skip
    assert none is None and int(count2) == int(count)
    assert math.isclose(float(total), float(ref_loss.sum()), rel_tol=2e-5, abs_tol=1e-5)


@pytest.mark.parametrize("case", list(SIGMOID_CASES))
def test_sigmoid_family_is_finite_at_extreme_logits(impl, case):
    """Logits +-1e4 and 0 against targets exactly 0 and 1 (q exactly 0 / 1 for varifocal)."""
    variant, gamma, alpha = SIGMOID_CASES[case]
    sig, _ = impl
    x = torch.tensor([[1e4, -1e4, 0.0, 30.0, -30.0, 1e4, -1e4, 17.0]]).repeat(2, 1)
    t = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.5], [0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]])
    loss, _, grad = sig(
        x, t, labels=False, alpha=alpha, gamma=gamma, ignore_index=None, label_smoothing=0.0,
        reduce=False, compute_grad=True, variant=variant,
    )  # fmt: skip
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    tt, valid = sigmoid_dense_targets(x, t, labels=False, ignore_index=None)
    ref_loss, ref_grad = sigmoid_family(x, tt, valid, alpha=alpha, gamma=gamma, variant=variant)
    torch.testing.assert_close(loss.double(), ref_loss, rtol=1e-5, atol=1e-6)
    ok = torch.isfinite(ref_grad)  # float64 autograd of q^g at q = 0 may be 0 * inf
    torch.testing.assert_close(grad.double()[ok], ref_grad[ok], rtol=1e-4, atol=1e-6)


def test_piecewise_gamma_exactly_at_a_threshold(impl):
    """x = 0 gives p = p_t = 1/2 exactly: a threshold at 0.5 picks the upper value (th <= p_t)."""
    sig, soft = impl
    pw = fk.PiecewiseGamma([0.5], [5.0, 1.0])
    x = torch.zeros(3, 4)
    t = torch.tensor([[1.0, 0.0, 1.0, 0.0]]).repeat(3, 1)
    loss, _, grad = sig(
        x, t, labels=False, alpha=None, gamma=pw, ignore_index=None, label_smoothing=0.0,
        reduce=False, compute_grad=True,
    )  # fmt: skip
    ce = math.log(2.0)
    torch.testing.assert_close(loss, torch.full((3, 4), 0.5 * ce))  # gamma 1: q^1 ce
    # softmax with two equal logits: p_c = 1/2 for both classes, the upper value again
    loss, _, _ = soft(
        torch.zeros(3, 2), torch.tensor([0, 1, 0]), alpha=None, gamma=pw, ignore_index=-100,
        label_smoothing=0.0, reduce=False, compute_grad=True,
    )  # fmt: skip
    torch.testing.assert_close(loss, torch.full((3,), 0.5 * ce))


SOFTMAX_CASES = {
    "poly1": (2.0, 1.0, 0.0),
    "poly1-ce": (0.0, 2.0, 0.0),
    "poly1-eps-1-gamma-half-ls": (0.5, -1.0, 0.1),
    "flsd53": (fk.FLSD53, 0.0, 0.0),
    "flsd53-poly1-ls": (fk.FLSD53, 1.0, 0.2),
    "piecewise4": (fk.PiecewiseGamma([0.05, 0.2, 0.5, 0.8], [5, 4, 3, 1, 0.5]), 0.5, 0.0),
}


@pytest.mark.parametrize("dtype", list(DTYPES), ids=list(DTYPES))
@pytest.mark.parametrize("form", ["rows", "maps", "soft", "alpha-ignore"])
@pytest.mark.parametrize("case", list(SOFTMAX_CASES))
def test_softmax_family_matches_the_float64_reference(impl, case, form, dtype):
    gamma, eps, ls = SOFTMAX_CASES[case]
    _, soft = impl
    dt = DTYPES[dtype]
    g = _gen(3)
    alpha = None
    if form == "maps":
        x = (torch.randn(2, 5, 3, 4, generator=g) * 3).to(dt)
        y = torch.randint(0, 5, (2, 3, 4), generator=g)
        y[0, 0, :2] = -100
    elif form == "soft":
        x = (torch.randn(12, 5, generator=g) * 3).to(dt)
        y = torch.softmax(torch.randn(12, 5, generator=g) * 2, 1)
    else:
        x = (torch.randn(12, 5, generator=g) * 3).to(dt)
        y = torch.randint(0, 5, (12,), generator=g)
        if form == "alpha-ignore":
            y[::4] = -100
            alpha = torch.tensor([0.5, 1.0, 2.0, 0.0, 1.5])
    loss, count, grad = soft(
        x, y, alpha=alpha, gamma=gamma, ignore_index=-100, label_smoothing=ls, reduce=False,
        compute_grad=True, variant=Variant(epsilon=eps),
    )  # fmt: skip
    ref_loss, ref_grad = softmax_family(x.float(), y, alpha=alpha, gamma=gamma, epsilon=eps, ignore_index=-100, ls=ls)
    torch.testing.assert_close(loss.double(), ref_loss, rtol=2e-5, atol=2e-6)
    rtol, atol = _tols(dt)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=rtol, atol=atol)
    total, count2, _ = soft(
        x, y, alpha=alpha, gamma=gamma, ignore_index=-100, label_smoothing=ls, reduce=True,
        compute_grad=False, variant=Variant(epsilon=eps),
    )  # fmt: skip
    assert int(count2) == int(count)
    assert math.isclose(float(total), float(ref_loss.sum()), rel_tol=2e-5, abs_tol=1e-5)


@pytest.mark.parametrize("case", list(SOFTMAX_CASES))
def test_softmax_family_is_finite_at_extreme_logits(impl, case):
    gamma, eps, ls = SOFTMAX_CASES[case]
    _, soft = impl
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, 0.0], [1e4, 0.0, -1e4]])
    for y in (torch.tensor([0, 0, 1, 2]), torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0], [0, 0, 1.0], [0.2, 0.3, 0.5]])):
        loss, _, grad = soft(
            x, y, alpha=None, gamma=gamma, ignore_index=-100, label_smoothing=ls, reduce=False,
            compute_grad=True, variant=Variant(epsilon=eps),
        )  # fmt: skip
        assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
        ref_loss, _ = softmax_family(x, y, alpha=None, gamma=gamma, epsilon=eps, ignore_index=-100, ls=ls)
        torch.testing.assert_close(loss.double(), ref_loss, rtol=1e-5, atol=1e-5)


def test_a_piecewise_gamma_of_one_value_is_the_plain_loss(impl):
    """The family's pass with a constant piecewise gamma gives the plain pass's numbers."""
    sig, soft = impl
    g = _gen(5)
    x, t = torch.randn(8, 6, generator=g) * 2, (torch.rand(8, 6, generator=g) < 0.4).float()
    const = fk.PiecewiseGamma([0.3], [2.0, 2.0])
    kw = dict(labels=False, alpha=0.25, ignore_index=None, label_smoothing=0.0, reduce=False, compute_grad=True)
    a, b = sig(x, t, gamma=2.0, **kw), sig(x, t, gamma=const, **kw)
    torch.testing.assert_close(b[0], a[0], rtol=2e-6, atol=1e-7)
    torch.testing.assert_close(b[2], a[2], rtol=2e-6, atol=1e-7)
    y = torch.randint(0, 6, (8,), generator=g)
    kw = dict(alpha=None, ignore_index=-100, label_smoothing=0.0, reduce=False, compute_grad=True)
    a, b = soft(x, y, gamma=2.0, **kw), soft(x, y, gamma=const, **kw)
    torch.testing.assert_close(b[0], a[0], rtol=2e-6, atol=1e-7)
    torch.testing.assert_close(b[2], a[2], rtol=2e-6, atol=1e-7)


def test_the_kernels_refuse_what_they_do_not_take(impl):
    sig, soft = impl
    x, t = torch.zeros(2, 3), torch.zeros(2, 3)
    five = fk.PiecewiseGamma([0.1, 0.2, 0.3, 0.4, 0.5], [1, 2, 3, 4, 5, 6])
    kw = dict(labels=False, alpha=None, ignore_index=None, label_smoothing=0.0, reduce=True, compute_grad=True)
    with pytest.raises(ValueError, match="at most 4 thresholds"):
        sig(x, t, gamma=five, **kw)
    with pytest.raises(ValueError, match="focal kind only"):
        soft(x, torch.tensor([0, 1]), alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=0.0,
             reduce=True, compute_grad=True, variant=Variant("quality"))  # fmt: skip
    with pytest.raises(ValueError, match="scores"):
        sig(x, t, gamma=2.0, scores=torch.ones(2), **kw)


def _info(op="sigmoid", **kw) -> CallInfo:
    base = dict(op=op, device=torch.device("cpu"), dtype=torch.float32, labels=False, soft=False,
                alpha="none", weight=False, reduce=True)  # fmt: skip
    return CallInfo(**{**base, **kw})


def test_kernel_shape_ok_takes_the_family():
    assert _kernel_shape_ok(_info(variant=Variant(epsilon=1.0), alpha="float"))
    assert _kernel_shape_ok(_info(piecewise=True, thresholds=4))
    assert _kernel_shape_ok(_info("softmax", variant=Variant(epsilon=-1.0), piecewise=True, thresholds=1, soft=True))
    assert _kernel_shape_ok(_info(variant=Variant("asymmetric", gamma_neg=4, clip=0.05), labels=True))
    assert _kernel_shape_ok(_info(variant=Variant("quality"), labels=True))
    assert _kernel_shape_ok(_info(variant=Variant("varifocal"), alpha="float"))
    # left to the eager path
    assert not _kernel_shape_ok(_info(piecewise=True, thresholds=5))
    assert not _kernel_shape_ok(_info(piecewise=True))  # a PiecewiseGamma whose length is not said
    assert not _kernel_shape_ok(_info("softmax", variant=Variant("quality")))
    assert not _kernel_shape_ok(_info(variant=Variant("asymmetric"), alpha="float"))
    assert not _kernel_shape_ok(_info(variant=Variant(epsilon=1.0), alpha="tensor"))
    assert not _kernel_shape_ok(_info(variant=Variant(epsilon=1.0), weight=True))


@pytest.mark.parametrize("name", IMPLS)
def test_the_dispatcher_sends_the_family_to_the_kernels(name):
    for info in (
        _info(variant=Variant(epsilon=1.0)),
        _info("softmax", piecewise=True, thresholds=1),
        _info(variant=Variant("varifocal"), alpha="float", labels=True),
    ):
        with fk.use_backend(name):
            assert backends.resolve(info).name == name
        with fk.use_backend("auto"):
            assert backends.resolve(info).name == ("fused" if cpu.available() else "eager")
    with fk.use_backend(name):
        assert backends.resolve(_info(piecewise=True, thresholds=6)).name == "eager"


@pytest.mark.skipif(not cpu.available(), reason="the C kernel is not built")
def test_the_custom_ops_carry_the_family():
    from focalkit.kernels import ops

    g = _gen(7)
    x, t = torch.randn(3, 4, 5, generator=g), torch.rand(3, 4, 5, generator=g)
    y, sc = torch.randint(0, 5, (3, 5), generator=g), torch.rand(3, 5, generator=g)
    for reduce in (True, False):
        torch.library.opcheck(
            torch.ops.focalkit.sigmoid_focal_fwd.default,
            (x, t, False, 0.25, 2.0, None, 0.0, reduce, True, "focal", 1.0, 0.0, 0.0, True, [0.2], [5.0, 3.0], None),
            test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"),
        )
        torch.library.opcheck(
            torch.ops.focalkit.sigmoid_focal_fwd.default,
            (x, y, True, None, 2.0, None, 0.0, reduce, True, "quality", 0.0, 0.0, 0.0, True, [], [], sc),
            test_utils=("test_schema", "test_faketensor"),
        )
        torch.library.opcheck(
            torch.ops.focalkit.softmax_focal_fwd.default,
            (x, y.clamp(max=3), None, 2.0, -100, 0.1, reduce, True, -1.0, [0.2], [5.0, 3.0]),
            test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"),
        )
    for variant, gamma in ((Variant(epsilon=1.0), fk.FLSD53), (Variant("asymmetric", gamma_neg=4, clip=0.05), 1.0)):
        via_op = ops.sigmoid_focal_fwd(
            x, t, labels=False, alpha=None, gamma=gamma, ignore_index=None, label_smoothing=0.0,
            reduce=False, compute_grad=True, variant=variant,
        )  # fmt: skip
        direct = cpu.sigmoid_focal_fwd(
            x, t, labels=False, alpha=None, gamma=gamma, ignore_index=None, label_smoothing=0.0,
            reduce=False, compute_grad=True, variant=variant,
        )  # fmt: skip
        torch.testing.assert_close(via_op[0], direct[0], rtol=0, atol=0)
        torch.testing.assert_close(via_op[2], direct[2], rtol=0, atol=0)


@pytest.mark.parametrize("case,form", SIGMOID_FORMS)
def test_sigmoid_family_matches_the_eager_closed_form(impl, case, form):
    """The closed form is the parity reference of the Triton first-call check: they must agree."""
    from focalkit.backends import closed_form

    variant, gamma, alpha = SIGMOID_CASES[case]
    sig, _ = impl
    x, targets, kw, scores = _sigmoid_inputs(form, torch.float32, seed=11)
    call = dict(alpha=alpha, gamma=gamma, label_smoothing=0.0, reduce=False, compute_grad=True,
                variant=variant, **({} if scores is None else {"scores": scores}), **kw)  # fmt: skip
    got, want = sig(x, targets, **call), closed_form.sigmoid_focal_fwd(x, targets, **call)
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[2], want[2], rtol=1e-5, atol=1e-6)
    assert int(got[1]) == int(want[1])


def _api_cases():
    g = _gen(13)
    x = torch.randn(6, 5, 4, generator=g) * 2
    t = (torch.rand(6, 5, 4, generator=g) < 0.3).float()
    y = torch.randint(0, 5, (6, 4), generator=g)
    y[0, 0] = -100
    soft = torch.softmax(torch.randn(6, 5, 4, generator=g), 1)
    return [
        ("sigmoid poly1", fk.sigmoid_focal_loss, x, t, dict(epsilon=1.0)),
        ("sigmoid flsd53 labels", fk.sigmoid_focal_loss, x, y.clamp(min=0), dict(gamma=fk.FLSD53, epsilon=-1.0)),
        ("softmax poly1", fk.softmax_focal_loss, x, y, dict(epsilon=2.0, reduction="sum")),
        ("softmax flsd53 soft", fk.softmax_focal_loss, x, soft, dict(gamma=fk.FLSD53, epsilon=1.0)),
        ("softmax piecewise ls", fk.softmax_focal_loss, x, y,
         dict(gamma=fk.PiecewiseGamma([0.1, 0.5, 0.9], [4, 2, 1, 0]), label_smoothing=0.1, reduction="none")),
        ("asl", fk.asymmetric_loss, x, t, dict()),
        ("asl labels clip0", fk.asymmetric_loss, x, y.clamp(min=0), dict(gamma_pos=1.0, gamma_neg=2.0, clip=0.0)),
        ("qfl", fk.quality_focal_loss, x, t * torch.rand(6, 5, 4, generator=g), dict(reduction="sum")),
        ("qfl labels scores", fk.quality_focal_loss, x, y, dict(scores=torch.rand(6, 4, generator=g), ignore_index=-100)),
        ("vfl", fk.varifocal_loss, x, t * torch.rand(6, 5, 4, generator=g), dict()),
        ("vfl labels scores", fk.varifocal_loss, x, y.clamp(min=0),
         dict(scores=torch.rand(6, 4, generator=g), iou_weighted=False, reduction="none")),
    ]


@pytest.mark.parametrize("backend", IMPLS)
@pytest.mark.parametrize("name,loss_fn,x,targets,kw", _api_cases(), ids=[c[0] for c in _api_cases()])
def test_the_public_losses_run_the_family_on_the_kernels(monkeypatch, backend, name, loss_fn, x, targets, kw):
    """Through the dispatcher, on the kernel backend, equal to the eager closed form."""
    real, reached = backends.resolve, []
    monkeypatch.setattr(backends, "resolve", lambda info: reached.append(real(info)) or reached[-1])
    xk = x.clone().requires_grad_(True)
    with fk.use_backend(backend):
        got = loss_fn(xk, targets, **kw)
    got.sum().backward()
    assert [b.name for b in reached] == [backend]
    xe = x.clone().requires_grad_(True)
    with fk.use_backend("eager"):
        want = loss_fn(xe, targets, **kw)
        want.sum().backward()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(xk.grad, xe.grad, rtol=1e-5, atol=1e-6)


def test_a_longer_piecewise_gamma_runs_eager(monkeypatch):
    real, reached = backends.resolve, []
    monkeypatch.setattr(backends, "resolve", lambda info: reached.append(real(info)) or reached[-1])
    five = fk.PiecewiseGamma([0.1, 0.2, 0.3, 0.4, 0.5], [1, 2, 3, 4, 5, 6])
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    for name in ["auto"] + IMPLS:
        with fk.use_backend(name):
            fk.softmax_focal_loss(x, y, gamma=five)
            fk.sigmoid_focal_loss(x, y.float().clamp(max=1).expand(3, 4).T.contiguous(), gamma=five)
    assert reached and all(b.name == "eager" for b in reached)
