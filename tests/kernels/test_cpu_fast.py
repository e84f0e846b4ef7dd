"""The CPU kernel's fast entry points (focalkit.kernels.cpu_fast): the library's own Python functions
(_focal_cpu_py.c) against the same steps over ctypes and against the general kernel call, bit for
bit; the target checks; the in-place scale."""

from __future__ import annotations

import ctypes

import pytest
import torch

from focalkit.kernels import cpu, cpu_fast

pytestmark = pytest.mark.skipif(not cpu.available(), reason="the C kernel is not built here")

CODES = {torch.float32: 0, torch.bfloat16: 1}


def _f32(v: float) -> float:
    return ctypes.c_float(v).value


@pytest.fixture(scope="module")
def impls():
    native = cpu_fast.entry_points()
    fallback = cpu_fast._CtypesEntryPoints(cpu._require())
    return native, fallback


def test_the_built_library_is_its_own_python_module(impls):
    native, fallback = impls
    assert native is not None and type(native).__name__ == "module", "the build lacks _focal_cpu_py.c"
    assert native.__name__ == "focalkit.kernels._focal_cpu"
    assert isinstance(fallback, cpu_fast._CtypesEntryPoints)


def test_another_library_swapped_in_is_called_through_ctypes(monkeypatch):
    """The benchmark swaps in other builds as cpu._lib: the fast path must run that build."""
    other = cpu.load_library(cpu._lib_file[1])  # the same file seen as another library object
    monkeypatch.setattr(cpu, "_lib", other)
    ep = cpu_fast.entry_points()
    assert isinstance(ep, cpu_fast._CtypesEntryPoints) and ep._lib is other
    monkeypatch.undo()
    assert type(cpu_fast.entry_points()).__name__ == "module"


def _labels_case(seed: int, dtype: torch.dtype, shape: tuple[int, ...], bad: bool = False):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g) * 4).to(dtype)
    n, c = shape[0], shape[1]
    y = torch.randint(0, c, shape[:1] + shape[2:], generator=g)
    if y.numel():
        y.view(-1)[:: max(1, y.numel() // 3)] = -100  # some ignored positions
        if bad:
            y.view(-1)[-1] = c  # out of range
    return x, y


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(8, 5), (3, 7, 4), (300, 300), (0, 4), (5, 3, 0)])
@pytest.mark.parametrize("mean", [True, False])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_softmax_labels_native_equals_ctypes_and_the_general_call(impls, dtype, shape, mean, ls):
    x, y = _labels_case(1, dtype, shape)
    n, c = shape[0], shape[1]
    inner = x.numel() // max(n * c, 1)
    out = []
    for ep in impls:
        grad = torch.empty_like(x)
        res = ep.softmax_labels(x.data_ptr(), CODES[dtype], y.data_ptr(), n, c, inner, 2.0, -100, ls,
                                grad.data_ptr(), torch.get_num_threads(), mean)  # fmt: skip
        out.append((res, grad))
    (r0, g0), (r1, g1) = out
    assert r0 == r1 and torch.equal(g0, g1)
    total, count, grad = cpu.softmax_focal_fwd(x, y, alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=ls,
                                               reduce=True, compute_grad=True)  # fmt: skip
    total, count = total.item(), count.item()  # the float32-rounded sum: f32(total) of the entry points
    if mean:
        den = _f32(float(max(count, 1)))
        assert r0 == (_f32(_f32(total) / den), den, 0)
    else:
        assert r0 == (_f32(total), 0.0, 0)
    assert torch.equal(g0, grad)


@pytest.mark.parametrize("shape", [(8, 5), (2, 3, 4)])
def test_softmax_labels_out_of_range_are_counted(impls, shape):
    x, y = _labels_case(2, torch.float32, shape, bad=True)
    y.view(-1)[0] = -3
    n, c = shape[0], shape[1]
    for ep in impls:
        loss, den, nbad = ep.softmax_labels(x.data_ptr(), 0, y.data_ptr(), n, c, x.numel() // (n * c), 2.0, -100,
                                            0.0, None, 1, True)  # fmt: skip
        assert nbad == 2 and loss != loss


def _soft_targets(seed: int, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(shape, generator=g) * 3, dim=1).to(dtype)


@pytest.mark.parametrize("tdtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(8, 5), (2, 6, 3, 5)])
@pytest.mark.parametrize("mean", [True, False])
def test_softmax_soft_native_equals_ctypes_and_the_general_call(impls, tdtype, shape, mean):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(shape, generator=g) * 3
    t = _soft_targets(4, shape, tdtype)
    n, c = shape[0], shape[1]
    inner = x.numel() // (n * c)
    out = []
    for ep in impls:
        for check in (True, False):
            grad = torch.empty_like(x)
            res = ep.softmax_soft(x.data_ptr(), 0, t.data_ptr(), CODES[tdtype], n, c, inner, 1.5, 0.05,
                                  grad.data_ptr(), 1, mean, check)  # fmt: skip
            out.append((res, grad))
    for res, grad in out[1:]:
        assert res == out[0][0] and torch.equal(grad, out[0][1])
    total, count, grad = cpu.softmax_focal_fwd(x, t, alpha=None, gamma=1.5, ignore_index=-100, label_smoothing=0.05,
                                               reduce=True, compute_grad=True)  # fmt: skip
    total, count = total.item(), count.item()
    den = _f32(float(max(count, 1)))
    assert out[0][0] == ((_f32(_f32(total) / den), den, 0) if mean else (_f32(total), 0.0, 0))
    assert torch.equal(out[0][1], grad)


@pytest.mark.parametrize("tdtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bad", [-1e-7, 1.0001, float("nan"), float("inf"), -float("inf")])
def test_float_targets_outside_the_unit_interval_are_counted(impls, tdtype, bad):
    """Class probabilities: counted by the softmax pass as it reads them; the sigmoid's dense
    targets: before the pass, which then does not run."""
    x = torch.randn(4, 6)
    t = _soft_targets(5, (4, 6), tdtype)
    t[1, 2] = bad
    t[3, 0] = bad
    if tdtype == torch.bfloat16 and bad in (-1e-7, 1.0001):
        t[1, 2] = t[3, 0] = (-0.01 if bad < 0 else 1.01)  # bfloat16 has no values that close to 0 and 1
    for ep in impls:
        grad = torch.full_like(x, 7.0)
        loss, den, nbad = ep.softmax_soft(x.data_ptr(), 0, t.data_ptr(), CODES[tdtype], 4, 6, 1, 2.0, 0.0,
                                          grad.data_ptr(), 1, True, True)  # fmt: skip
        assert nbad == 2 and loss != loss
        tf = t.float().contiguous()
        if tdtype == torch.float32:
            grad.fill_(7.0)
            loss, den, nbad = ep.sigmoid_dense(x.data_ptr(), 0, tf.data_ptr(), x.numel(), 0.25, True, 2.0, 0.0,
                                               grad.data_ptr(), 1, False, True)  # fmt: skip
            assert nbad == 2 and (grad == 7.0).all()  # nothing computed
        loss, den, nbad = ep.softmax_soft(x.data_ptr(), 0, t.data_ptr(), CODES[tdtype], 4, 6, 1, 2.0, 0.0, None, 1,
                                          True, False)  # fmt: skip
        assert nbad == 0  # check off: computed as given


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("numel", [1, 37, 70000])
@pytest.mark.parametrize("mean", [True, False])
def test_sigmoid_dense_native_equals_ctypes_and_the_general_call(impls, dtype, alpha, numel, mean):
    g = torch.Generator().manual_seed(6)
    x = (torch.randn(numel, generator=g) * 5).to(dtype)
    t = torch.rand(numel, generator=g)
    t[::3] = (t[::3] > 0.5).float()
    out = []
    for ep in impls:
        grad = torch.empty_like(x)
        res = ep.sigmoid_dense(x.data_ptr(), CODES[dtype], t.data_ptr(), numel, alpha or 0.0, alpha is not None, 2.0,
                               0.1, grad.data_ptr(), torch.get_num_threads(), mean, True)  # fmt: skip
        out.append((res, grad))
    assert out[0][0] == out[1][0] and torch.equal(out[0][1], out[1][1])
    total, count, grad = cpu.sigmoid_focal_fwd(x, t, labels=False, alpha=alpha, gamma=2.0, ignore_index=None,
                                               label_smoothing=0.1, reduce=True, compute_grad=True)  # fmt: skip
    total, count = total.item(), count.item()
    den = _f32(float(max(count, 1)))
    assert out[0][0] == ((_f32(_f32(total) / den), den, 0) if mean else (_f32(total), 0.0, 0))
    assert torch.equal(out[0][1], grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("grad_out,den", [(1.0, 8.0), (3.0, 7.0), (65536.0, 3.0), (-0.5, 0.0), (1e-30, 1e30)])
def test_scale_is_tensor_mul_by_the_float32_factor(impls, dtype, grad_out, den):
    g = torch.Generator().manual_seed(7)
    base = (torch.randn(1000, generator=g) * 10).to(dtype)
    base[:4] = torch.tensor([float("inf"), -float("inf"), float("nan"), 0.0]).to(dtype)
    f = _f32(grad_out / den if den else grad_out)
    want = base.clone().mul_(f)
    for ep in impls:
        got = base.clone()
        assert ep.scale(got.data_ptr(), CODES[dtype], got.numel(), grad_out, den) == f
        assert torch.equal(got.nan_to_num(), want.nan_to_num()) and torch.equal(got.isnan(), want.isnan())


def test_bad_arguments_are_type_errors_not_crashes(impls):
    native = impls[0]
    with pytest.raises(TypeError, match="takes 12 arguments"):
        native.softmax_labels(0, 0, 0)
    with pytest.raises(TypeError):
        native.softmax_labels(0, 0, 0, 1, 2, 1, "2.0", -100, 0.0, None, 1, True)
    with pytest.raises(TypeError, match="takes 5 arguments"):
        native.scale(0, 0)
