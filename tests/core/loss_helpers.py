"""Helpers shared by the loss tests of tests/core (imported as ``loss_helpers``)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch


def close(actual: torch.Tensor, expected: Any, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """``actual`` (any dtype/device) equals ``expected`` (tensor or array) within rtol/atol, in float64."""
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().double().cpu().numpy()
    np.testing.assert_allclose(actual.detach().double().cpu().numpy(), np.asarray(expected), rtol=rtol, atol=atol)


def grad(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """d(sum of fn(x))/dx by autograd, on a fresh leaf copy of ``x``."""
    x = x.detach().clone().requires_grad_(True)
    fn(x).sum().backward()
    assert x.grad is not None
    return x.grad
