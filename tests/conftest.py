"""Shared test configuration.

Triton kernels run on the CPU through Triton's interpreter, which must be switched on before any
kernel is defined, so it is set here, before test modules import focalkit's kernels.
"""

import os

try:  # pragma: no cover - depends on the machine
    import torch

    _has_cuda = torch.cuda.is_available()
except Exception:  # pragma: no cover
    _has_cuda = False

if not _has_cuda:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

import focalkit as fk  # noqa: E402

BACKENDS = fk.available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest):
    """Runs a test once per backend available here (reference, eager, and compiled ones)."""
    with fk.use_backend(request.param):
        yield request.param
