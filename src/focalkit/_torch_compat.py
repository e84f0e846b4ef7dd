"""The one adapter for PyTorch internals that focalkit relies on.

Each function wraps a private PyTorch detail, says why the public API does not suffice, and is
tested in ``tests/test_torch_compat.py``, so that a PyTorch upgrade that changes one breaks here,
in one place, with a clear test failure.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import torch
from torch import Tensor

__all__ = [
    "assert_in_graph", "direct_apply", "mark_trace_constant", "plain_eager", "storage_use_count", "transforms_active",
]  # fmt: skip

F = TypeVar("F", bound=Callable[..., object])


def mark_trace_constant(fn: F) -> F:
    """Make ``torch.compile`` call ``fn`` once at trace time and bake its result into the graph.

    The public spelling is ``torch.compiler.assume_constant_result``, but it imports
    ``torch._dynamo`` (and with it SymPy and Triton, ~1 s and ~900 modules) at ``import focalkit``
    time on machines that never compile anything. The decorator only sets this attribute, which is
    what dynamo reads, so we set it directly.
    """
    fn._dynamo_marked_constant = True  # type: ignore[attr-defined]
    return fn


def storage_use_count(t: Tensor) -> int:
    """How many references hold ``t``'s storage (tensors and views sharing it included).

    The temporary storage object made for this call counts as one: a tensor that alone holds its
    storage gives 2.

    PyTorch has no public call for this; ``sys.getrefcount`` counts Python references to one
    tensor object, not the owners of its storage. The CPU kernel's gradient pool uses it to reuse
    a buffer only when nothing else holds it.
    """
    return int(torch._C._storage_Use_Count(t.untyped_storage()._cdata))


def assert_in_graph(ok: Tensor, message: str) -> None:
    """Fail with ``message`` when the 0-d bool tensor ``ok`` is False, as an op of the graph.

    Used for value checks under ``torch.compile``, where reading a tensor's value on the host
    (``bool(t)``, ``t.tolist()``) is data-dependent and breaks the graph. ``torch._assert_async``
    is the op ``torch.compile`` traces for such a check (a RuntimeError on CPU, a device-side
    assert on CUDA); PyTorch has no public spelling of it.
    """
    torch._assert_async(ok, message)


def transforms_active() -> bool:
    """Whether the call runs under a functorch transform (``torch.func.grad``, ``vmap``, ...) or
    ``torch.jit.trace``: then the loss takes its composed path of plain torch ops, which both
    support (the kernels' autograd Function computes its gradient in the forward pass).

    ``torch.jit.is_tracing`` is public; the functorch query is not (``torch.func`` has no public
    "am I inside a transform" call). Under ``torch.compile`` this is False: dynamo traces the
    kernel path itself.
    """
    if torch.compiler.is_compiling():
        return False
    return bool(torch._C._are_functorch_transforms_active()) or torch.jit.is_tracing()


_functorch_active = torch._C._are_functorch_transforms_active
_jit_tracing = torch._C._is_tracing
_compiling = torch.compiler.is_compiling


def plain_eager() -> bool:
    """Neither ``torch.compile`` tracing, nor a functorch transform, nor ``torch.jit.trace``: the
    call runs eagerly on real tensors (the losses' fast path, which skips the dispatcher, is for
    these calls only).

    :func:`transforms_active` and ``not torch.compiler.is_compiling()`` in one call, through the
    C functions behind them (``torch.jit.is_tracing`` adds a ``torch.jit.is_scripting`` test, False
    outside TorchScript, which cannot call focalkit's Python fast path anyway): ~0.1 us instead of
    ~0.4 us, on a path where a small loss's whole forward is ~10 us.
    """
    return not (_compiling() or _functorch_active() or _jit_tracing())


def direct_apply(cls: type[torch.autograd.Function]) -> Callable[..., Any]:
    """``cls.apply`` without the Python layer of ``torch.autograd.Function.apply``, for calls made
    outside functorch transforms (the caller checks :func:`transforms_active`).

    That layer binds default arguments (for ``setup_context`` Functions; ``cls`` must not define
    one), sends the call to functorch when a transform is active, and otherwise unwraps "dead"
    functorch wrappers among the tensor arguments before the C++ ``_FunctionBase.apply``: ~3 us of
    Python per call, a tenth of a small loss's forward. The returned callable does the unwrapping
    for its first argument (the only tensor argument a caller of it may take from the user) and
    calls ``_FunctionBase.apply`` directly. There is no public spelling of either step.
    """
    if cls.setup_context is not torch.autograd.Function.setup_context:
        raise TypeError(f"{cls.__name__} defines setup_context: use {cls.__name__}.apply")
    base = super(torch.autograd.Function, cls).apply  # type: ignore[misc]  # _FunctionBase.apply
    unwrap = torch._C._functorch.unwrap_if_dead

    def apply(x: Tensor, *args: Any) -> Any:
        return base(unwrap(x), *args)

    return apply
