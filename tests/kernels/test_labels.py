"""Class-index labels of every integer dtype in the compiled kernels (issue 9.4, kernel side).

-100 (the default ``ignore_index``) cast to uint8 is 156: comparing labels in their own narrow type
would drop a real class 156. The kernels compare in int64 (the C kernel; the Triton entry points
widen uint8/int8/int16), so every backend agrees with int64 labels and with the float64 reference,
and a label outside the classes is a ``ValueError`` naming ``targets`` (the C kernel checks itself,
so even ``validate_args=False`` gets it), never an ``IndexError``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import focalkit as fk
from focalkit.kernels import cpu
from focalkit.testing import reference

BACKENDS = fk.available_backends()  # reference, eager, and the kernels built here
KERNEL_BACKENDS = [b for b in ("fused", "triton") if b in BACKENDS]


def _run(backend, fn, x, y, **kw):
    xg = x.clone().requires_grad_()
    with fk.use_backend(backend):
        loss = fn(xg, y, reduction="none", **kw)
    (g,) = torch.autograd.grad(loss.sum(), xg)
    return loss.detach(), g


def test_issue_repro_uint8_class_156_is_a_class_on_every_backend():
    """C = 200, y = [156, 3, 7, 156] as uint8: class 156 is kept, as with int64 labels."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 200, generator=g)
    y8 = torch.tensor([156, 3, 7, 156], dtype=torch.uint8)
    want = reference.softmax_focal_loss(x.double().numpy(), y8.long().numpy(), gamma=2.0, reduction="none")
    assert (want > 0).all()
    results = {}
    for b in BACKENDS:
        loss, grad = _run(b, fk.softmax_focal_loss, x, y8)
        loss64, grad64 = _run(b, fk.softmax_focal_loss, x, y8.long())
        np.testing.assert_allclose(loss.double().numpy(), want, rtol=2e-5)
        torch.testing.assert_close(loss, loss64, rtol=0, atol=0)
        torch.testing.assert_close(grad, grad64, rtol=0, atol=0)
        results[b] = fk.softmax_focal_loss(x, y8)  # mean over 4 kept positions
    for b, v in results.items():
        torch.testing.assert_close(v, results["reference"], rtol=2e-5, atol=0, msg=b)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64])
@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
def test_every_integer_dtype_and_ignore_value(backend, dtype):
    g = torch.Generator().manual_seed(1)
    c = 120 if dtype == torch.int8 else 200
    x = torch.randn(2, c, 3, 4, generator=g)
    y = torch.randint(0, c, (2, 3, 4), generator=g)
    y[0, 0] = 100 if dtype == torch.int8 else 156  # the wrap value of -100 in int8 is not -100
    ignore = -1 if dtype != torch.uint8 else 255
    if dtype != torch.uint8:
        y[1, 2, :2] = ignore
    yd = y.to(dtype)
    for fn, kw in ((fk.softmax_focal_loss, {}), (fk.sigmoid_focal_loss, {"alpha": 0.25})):
        loss, grad = _run(backend, fn, x, yd, ignore_index=ignore, **kw)
        loss64, grad64 = _run(backend, fn, x, y, ignore_index=ignore, **kw)
        torch.testing.assert_close(loss, loss64, rtol=0, atol=0)
        torch.testing.assert_close(grad, grad64, rtol=0, atol=0)
    # uint8 masks with 255 = void, the segmentation convention
    y8 = y.to(torch.uint8) if dtype == torch.uint8 else None
    if y8 is not None:
        y8[1, 1] = 255
        loss, _ = _run(backend, fk.softmax_focal_loss, x, y8, ignore_index=255)
        assert (loss[1, 1] == 0).all() and (loss[0, 0] > 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_of_range_uint8_label_is_a_value_error(backend):
    """C = 100 < 157: the uint8 label 156 is not a class; never an IndexError, never dropped."""
    x = torch.randn(4, 100)
    y8 = torch.tensor([156, 3, 7, 156], dtype=torch.uint8)
    with fk.use_backend(backend), pytest.raises(ValueError, match="targets"):
        fk.softmax_focal_loss(x, y8)
    with fk.use_backend(backend), pytest.raises(ValueError, match="targets"):
        fk.sigmoid_focal_loss(x, y8)  # labels mode: [0, C] with C = background


@pytest.mark.skipif(not cpu.available(), reason="C kernel not built")
def test_c_kernel_reports_out_of_range_labels_itself():
    """Without the Python-side checks (validate_args=False) the C kernel still refuses them."""
    x = torch.randn(4, 100)
    y8 = torch.tensor([156, 3, 7, 156], dtype=torch.uint8)
    with fk.use_backend("fused"):
        with pytest.raises(ValueError, match=r"targets: 2 class index\(es\) outside \[0, 99\]"):
            fk.softmax_focal_loss(x, y8, validate_args=False)
        with pytest.raises(ValueError, match=r"targets: 2 class index\(es\) outside \[0, 100\]"):
            fk.sigmoid_focal_loss(x, y8, validate_args=False)
        with pytest.raises(ValueError, match=r"outside \[0, 99\] and not ignore_index=-1"):
            fk.softmax_focal_loss(x, torch.tensor([-5, 0, -1, 2]), ignore_index=-1, validate_args=False)
    kw = dict(alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=0.0, reduce=True, compute_grad=True)
    loss, count, _ = cpu.softmax_focal_fwd(torch.randn(4, 200), torch.tensor([156, 3, 7, 156], dtype=torch.uint8), **kw)
    assert int(count) == 4 and float(loss) > 0


@pytest.mark.skipif("triton" not in BACKENDS, reason="no Triton (CUDA or interpreter)")
def test_triton_entry_points_widen_narrow_labels():
    from focalkit.kernels import _triton as kt

    x = torch.randn(4, 200)
    y8 = torch.tensor([156, 3, 7, 156], dtype=torch.uint8)
    kw = dict(alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=0.0, reduce=False, compute_grad=True)
    a = kt.softmax_focal_fwd(x, y8, **kw)
    b = kt.softmax_focal_fwd(x, y8.long(), **kw)
    assert int(a[1]) == int(b[1]) == 4
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    torch.testing.assert_close(a[2], b[2], rtol=0, atol=0)
    s = dict(kw, ignore_index=-100)
    a = kt.sigmoid_focal_fwd(x, y8, labels=True, **{**s, "alpha": 0.25})
    b = kt.sigmoid_focal_fwd(x, y8.long(), labels=True, **{**s, "alpha": 0.25})
    assert int(a[1]) == int(b[1]) == 800
    torch.testing.assert_close(a[2], b[2], rtol=0, atol=0)
    with pytest.raises(ValueError, match="ignore_index must fit in int64"):
        kt.softmax_focal_fwd(x, y8, **{**kw, "ignore_index": 2**70})
