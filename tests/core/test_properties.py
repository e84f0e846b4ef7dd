"""Hypothesis property tests over shapes, dtypes, alpha, gamma and targets, against the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import focalkit as fk
from focalkit.testing import reference as R

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DTYPES = {"float64": (torch.float64, 1e-9), "float32": (torch.float32, 2e-5), "bfloat16": (torch.bfloat16, None)}


@st.composite
def dense_shapes(draw, min_classes=1):
    n = draw(st.integers(0, 4))
    c = draw(st.integers(min_classes, 5))
    extra = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    return (n, c, *extra)


def _tensor(shape, seed, scale, dtype):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)


@SETTINGS
@given(
    shape=dense_shapes(),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([0.1, 3.0, 30.0]),
    gamma=st.floats(0.0, 10.0),
    alpha=st.one_of(st.none(), st.floats(0.0, 1.0)),
    dtype=st.sampled_from(sorted(DTYPES)),
    form=st.sampled_from(["hard", "soft", "index"]),
    reduction=st.sampled_from(["none", "mean", "sum"]),
    smoothing=st.sampled_from([0.0, 0.1]),
)
def test_sigmoid_matches_reference(backend, shape, seed, scale, gamma, alpha, dtype, form, reduction, smoothing):
    torch_dtype, tol = DTYPES[dtype]
    x = _tensor(shape, seed, scale, torch_dtype).requires_grad_(True)
    g = torch.Generator().manual_seed(seed + 1)
    ref_t = None
    if form == "index":
        t = torch.randint(0, shape[1] + 1, shape[:1] + shape[2:], generator=g)
        if shape[1] == 1:  # one class: (N, ...) integer targets are binary 0/1 labels, 1 = positive
            ref_t = t.unsqueeze(1).double()
    else:
        t = torch.rand(shape, generator=g, dtype=torch.float64)
        t = (t > 0.7).double() if form == "hard" else t
        t = t.to(torch_dtype)
    out = fk.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction, label_smoothing=smoothing)
    assert out.dtype == torch_dtype
    out.sum().backward()
    assert torch.isfinite(x.grad.float()).all() and torch.isfinite(out.float()).all()
    ref = R.sigmoid_focal_loss(x, t if ref_t is None else ref_t, alpha=alpha, gamma=gamma, reduction=reduction, label_smoothing=smoothing)
    if tol is None:  # bfloat16 output: 8 bits of mantissa
        np.testing.assert_allclose(out.detach().double().numpy(), ref, rtol=1e-2, atol=1e-2)
    else:
        np.testing.assert_allclose(out.detach().double().numpy(), ref, rtol=tol, atol=tol)


@SETTINGS
@given(
    shape=dense_shapes(min_classes=2),  # one class is refused: a softmax over it is constant
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([0.1, 3.0, 30.0]),
    gamma=st.floats(0.0, 10.0),
    use_alpha=st.booleans(),
    dtype=st.sampled_from(sorted(DTYPES)),
    soft=st.booleans(),
    reduction=st.sampled_from(["none", "mean", "sum"]),
    smoothing=st.sampled_from([0.0, 0.1]),
)
def test_softmax_matches_reference(backend, shape, seed, scale, gamma, use_alpha, dtype, soft, reduction, smoothing):
    torch_dtype, tol = DTYPES[dtype]
    x = _tensor(shape, seed, scale, torch_dtype).requires_grad_(True)
    g = torch.Generator().manual_seed(seed + 1)
    c = shape[1]
    if soft:
        t = torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), 1).to(torch_dtype)
    else:
        t = torch.randint(0, c, shape[:1] + shape[2:], generator=g)
        t.view(-1)[::4] = -100
    alpha = (torch.rand(c, generator=g) * 2).tolist() if use_alpha else None
    out = fk.softmax_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction, label_smoothing=smoothing)
    assert out.dtype == torch_dtype
    out.sum().backward()
    assert torch.isfinite(x.grad.float()).all() and torch.isfinite(out.float()).all()
    ref = R.softmax_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction, label_smoothing=smoothing)
    if tol is None:
        np.testing.assert_allclose(out.detach().double().numpy(), ref, rtol=1e-2, atol=1e-2)
    else:
        np.testing.assert_allclose(out.detach().double().numpy(), ref, rtol=tol, atol=tol)
