"""The adapter for PyTorch internals (focalkit._torch_compat): a PyTorch upgrade breaks here first."""

from __future__ import annotations

import torch

from focalkit._torch_compat import direct_apply, mark_trace_constant, storage_use_count


def test_storage_use_count_counts_owners_of_the_storage():
    t = torch.zeros(8)
    alone = storage_use_count(t)
    assert alone == 2  # t itself and the temporary storage object of the call
    v = t[2:]  # a view: its own tensor, the same storage
    assert storage_use_count(t) == alone + 1
    del v
    assert storage_use_count(t) == alone


def test_mark_trace_constant_is_read_by_torch_compile():
    calls = []

    @mark_trace_constant
    def setting() -> float:
        calls.append(1)
        return 3.0

    @torch.compile(backend="eager", fullgraph=True)
    def f(x):
        return x * setting()

    x = torch.ones(2)
    assert torch.equal(f(x), x * 3)
    f(x)
    assert getattr(setting, "_dynamo_marked_constant", False)
    assert len(calls) == 1  # called once, at trace time, and baked into the graph


class _Double(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):  # type: ignore[override]
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g * ctx.k, None


def test_direct_apply_is_function_apply_without_its_python_layer():
    x = torch.randn(5, requires_grad=True)
    apply = direct_apply(_Double)
    out = apply(x, 3.0)
    assert type(out.grad_fn).__name__ == "_DoubleBackward"
    torch.testing.assert_close(out, _Double.apply(x, 3.0))
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((5,), 3.0))
    with torch.no_grad():
        assert apply(x, 2.0).grad_fn is None
    # a tensor that escaped torch.func.grad: the same result as Function.apply
    escaped = []
    torch.func.grad(lambda r: escaped.append(r) or r.sum())(torch.ones(3))
    torch.testing.assert_close(apply(escaped[0], 2.0), _Double.apply(escaped[0], 2.0))


def test_direct_apply_refuses_setup_context_functions():
    class WithSetup(torch.autograd.Function):
        @staticmethod
        def forward(x):  # type: ignore[override]
            return x * 2

        @staticmethod
        def setup_context(ctx, inputs, output):
            pass

    import pytest

    with pytest.raises(TypeError, match="setup_context"):
        direct_apply(WithSetup)
