"""Scalar parameters below float32's normal range (hypothesis found gamma = 1.4e-158).

The Triton kernels take gamma, alpha, epsilon, clip and the smoothing as float32 scalars and decide
compile-time flags (GAMMA_ZERO, HAS_EPS, CLIP) from them; a tiny nonzero gamma once set the flag
"nonzero" while the kernel computed with a zero or mistyped value, and returned zero and NaN
gradients with no error. Every backend must agree with the float64 reference here.
"""

from __future__ import annotations

import pytest
import torch

import focalkit as fk
from focalkit.testing import reference

pytest.importorskip("triton")
from focalkit.kernels import _triton as kt  # noqa: E402

pytestmark = pytest.mark.skipif(not kt.triton_available(), reason="no CUDA device and no interpreter")

TINY = [1.4412865754879833e-158, 1e-40, 1e-45, 1e-37]


DTYPES = {torch.float32: (1e-4, 1e-5), torch.bfloat16: (2e-2, 1e-2), torch.float16: (2e-3, 1e-3)}


def _x(dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor([[24.125, 5.25, -0.5], [2.6719, -18.375, 0.0]], dtype=dtype)


@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("epsilon", [0.0, 1e-40])
@pytest.mark.parametrize("gamma", TINY)
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("backend", ["triton", "eager", "fused", "reference"])
def test_sigmoid_tiny_gamma_matches_the_reference(gamma, backend, dtype, epsilon, alpha) -> None:
    if backend not in fk.available_backends():
        pytest.skip(f"{backend} is not available here")
    t = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=dtype)
    x = _x(dtype).requires_grad_(True)
    with fk.use_backend(backend):
        loss = fk.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, epsilon=epsilon, reduction="sum")
    loss.backward()
    xd, td = x.detach().double().numpy(), t.double().numpy()
    want = reference.sigmoid_focal_loss(xd, td, alpha=alpha, gamma=gamma, reduction="sum")
    want_g = reference.sigmoid_focal_grad(xd, td, alpha=alpha, gamma=gamma, reduction="sum")
    rtol, atol = DTYPES[dtype]
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(loss.double(), torch.tensor(float(want), dtype=torch.float64), rtol=rtol, atol=atol)
    torch.testing.assert_close(x.grad.double(), torch.as_tensor(want_g), rtol=rtol, atol=atol)


@pytest.mark.parametrize("gamma", TINY)
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("backend", ["triton", "eager", "fused"])
def test_softmax_tiny_gamma_matches_the_reference(gamma: float, backend: str, dtype) -> None:
    if backend not in fk.available_backends():
        pytest.skip(f"{backend} is not available here")
    y = torch.tensor([0, 2])
    x = _x(dtype).requires_grad_(True)
    with fk.use_backend(backend):
        loss = fk.softmax_focal_loss(x, y, gamma=gamma, label_smoothing=1e-40, reduction="sum")
    loss.backward()
    xd = x.detach().double().numpy()
    want = reference.softmax_focal_loss(xd, y.numpy(), gamma=gamma, reduction="sum")
    want_g = reference.softmax_focal_grad(xd, y.numpy(), gamma=gamma, reduction="sum")
    rtol, atol = DTYPES[dtype]
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(loss.double(), torch.tensor(float(want), dtype=torch.float64), rtol=rtol, atol=atol)
    torch.testing.assert_close(x.grad.double(), torch.as_tensor(want_g), rtol=rtol, atol=atol)
