"""The one autograd path of the kernel backends, and the one reduction rule of every path.

Every kernel (the eager closed form, the C kernel, the Triton kernels) returns the loss together
with its gradient, d(sum of loss)/d(logits), computed in the same pass. :class:`FocalLossFunction`
wraps such a kernel: its forward runs the kernel and reduces the loss, its backward scales the
saved gradient by the incoming one. The composed ``"reference"`` path differentiates with autograd
and only shares :func:`denominator` / :func:`reduce_loss`.

Reduction rule, for a per-element (sigmoid) or per-position (softmax) loss ``l`` with ``count``
non-ignored entries:

* ``normalizer`` given: ``sum(l) / normalizer`` (0 already replaced by 1 in validation);
* ``"mean"``: ``sum(l) / max(count, 1)``;
* ``"sum"``: ``sum(l)``; ``"none"``: ``l``.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any, Callable

import torch
from torch import Tensor

__all__ = ["FocalLossFunction", "ScalarLossFunction", "denominator", "f32", "reduce_loss"]


def f32(v: float) -> float:
    """``v`` rounded to float32 (inf beyond float32's range), as a Python float.

    A float32 operation on float32 operands equals the float64 one rounded once to float32 (for
    +, -, *, /), so Python floats reproduce the float32 tensor arithmetic of the reduction bit for bit.
    """
    return ctypes.c_float(v).value


def denominator(count: Tensor, reduction: str, normalizer: Any, like: Tensor) -> Tensor | float | None:
    """What the summed loss is divided by (None: nothing), as a tensor on ``like``'s device or a float."""
    if normalizer is not None:
        if isinstance(normalizer, Tensor):
            return normalizer.to(device=like.device, dtype=like.dtype)
        return normalizer
    if reduction == "mean":
        return count.clamp_min(1).to(like.dtype)
    return None


def reduce_loss(loss: Tensor, count: Tensor, reduction: str, normalizer: Any) -> Tensor:
    """Apply the reduction rule to a per-element or per-position loss."""
    if normalizer is None and reduction == "none":
        return loss
    den = denominator(count, reduction, normalizer, loss)
    total = loss.sum()
    return total if den is None else total / den


class FocalLossFunction(torch.autograd.Function):
    """Runs a kernel that returns ``(loss, count, grad)``; backward scales the saved gradient.

    ``apply(x, kernel, kwargs, reduction, normalizer, per_position, recompute)``: ``kwargs`` are the
    kernel's keyword arguments (targets included); ``per_position`` marks a loss with the class
    dimension summed out (softmax), whose per-position incoming gradient is broadcast along
    dimension 1; ``recompute(x)`` gives the same reduced loss as differentiable torch ops (the
    composed path), used when backward itself must be differentiable.

    * First order (the usual ``backward()``): d loss/dx = saved gradient x incoming gradient; for
      float16 logits the kernels save the gradient in float32, and the product is cast to float16
      only at the end, so a loss scale (``GradScaler``) keeps small gradients from flushing to 0.
    * Higher order (``create_graph=True``: gradient penalties, meta-learning, Hessian-vector
      products): backward recomputes the loss with ``recompute`` in float64 and differentiates it
      with autograd, so the returned gradient is itself differentiable (exact second derivatives).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        kernel: Callable[..., Any],
        kwargs: dict[str, Any],
        reduction: str,
        normalizer: Any,
        per_position: bool,
        recompute: Callable[[Tensor], Tensor],
    ) -> Tensor:
        reduce = reduction != "none"
        loss, count, grad = kernel(x, reduce=reduce, compute_grad=ctx.needs_input_grad[0], **kwargs)
        den = denominator(count, reduction, normalizer, loss) if reduce else None
        if den is not None:
            loss = loss / den
        ctx.reduce = reduce
        ctx.per_position = per_position
        ctx.den = den
        ctx.x_dtype = x.dtype
        ctx.recompute = recompute
        if grad is not None:
            ctx.save_for_backward(grad, x)  # x: no copy, only kept for a differentiable backward
        return loss

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        none = (None,) * 6
        if not ctx.needs_input_grad[0]:
            return (None,) + none
        grad, x = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: the gradient must be differentiable
            return (_differentiable_grad(ctx.recompute, x, grad_out),) + none
        g = grad_out.float() if grad_out.dtype in (torch.float16, torch.bfloat16) else grad_out
        if ctx.den is not None:
            g = g / ctx.den
        if ctx.reduce and grad.device.type == "cpu" and not torch.compiler.is_compiling():
            return (_scale_saved_grad(ctx, grad, g).to(ctx.x_dtype),) + none
        if not ctx.reduce and ctx.per_position:
            g = g.unsqueeze(1)
        if grad.dtype == torch.float64:
            gx = grad * g.to(torch.float64)
        else:  # float32 product, then the logits' dtype
            gx = (grad.float() * g.float()).to(ctx.x_dtype)
        return (gx,) + none


#: Logits up to this many elements are kept by :class:`ScalarLossFunction` as an attribute.
_KEEP_AS_ATTRIBUTE = 1 << 16


def _check_version(x: Tensor, version: int) -> None:
    """An error if the input :class:`ScalarLossFunction` keeps as an attribute was modified in place
    since the forward (as a saved tensor would give)."""
    if x._version != version:
        raise RuntimeError(
            "one of the variables needed for gradient computation has been modified by an inplace "
            f"operation: the logits of focalkit's loss are at version {x._version}; expected version "
            f"{version}. A differentiable backward (create_graph=True) recomputes the loss from them."
        )


def _differentiable_grad(recompute: Callable[[Tensor], Tensor], x: Tensor, grad_out: Tensor) -> Tensor:
    """d loss/dx as a differentiable function of x (and of grad_out), through the composed path."""
    with torch.enable_grad():
        xr = x if x.requires_grad else x.detach().requires_grad_()
        loss = recompute(xr.double()).to(grad_out.dtype)
        (gx,) = torch.autograd.grad(loss, xr, grad_out, create_graph=True)
    return gx


def _scale_saved_grad(ctx: Any, grad: Tensor, g: Tensor) -> Tensor:
    """Scale the saved gradient by the scalar g in place and hand it out (CPU, reduced loss).

    The saved gradient is a fresh tensor owned by this graph node, so the common single backward
    allocates nothing (autograd adopts the buffer as ``.grad``; peak memory stays at one
    logits-sized tensor). A second backward through a retained graph divides the first factor
    back out-of-place; a zero factor returns zeros and leaves the saved gradient untouched.
    """
    f = float(g)  # a CPU scalar: no device sync
    prev = getattr(ctx, "applied", None)
    if prev is None:
        if f == 0.0 or f != f:
            return torch.zeros_like(grad) if f == 0.0 else grad * f
        if f != 1.0:
            grad.data.mul_(f)  # .data: the saved tensor's version counter stays valid
        ctx.applied = f
        return grad
    return grad * (f / prev)


class ScalarLossFunction(torch.autograd.Function):
    """:class:`FocalLossFunction` for a kernel already run: a reduced CPU loss held as Python numbers.

    ``apply(x, loss, grad, (den, scale, state, dtype))``: ``loss`` is the reduced float32 loss as a
    Python float, ``grad`` the gradient d(sum)/dx in x's dtype (float32 or bfloat16), ``den`` the
    float32 denominator of ``"mean"`` (0.0: ``"sum"``), ``scale(ptr, code, numel, v, 0.0)``
    multiplies a gradient buffer by the float32 ``v`` in place (the kernel's entry point,
    :mod:`focalkit.kernels.cpu_fast`), ``state = (composed_loss, op, targets, kwargs, reduction)``
    what a differentiable backward recomputes the loss with (the ``recompute`` of
    :class:`FocalLossFunction`), ``dtype`` that of the returned loss (float32, or bfloat16 for
    bfloat16 logits: no separate conversion node). The arguments after ``grad`` travel as one tuple:
    each argument of ``apply`` costs time. Same values as :class:`FocalLossFunction` with
    ``reduce`` on CPU (the float32 rounding of ``total / den`` and of ``grad_out / den`` is done on
    Python floats, see :func:`f32`), with no 0-d tensor operations: the eager fast path of the
    losses on small tensors, where those operations are most of the time.

    The gradient is a saved tensor (released by backward, which then hands the buffer to autograd:
    a second backward without ``retain_graph`` raises as for PyTorch's own losses); backward scales
    it in place (through its pointer up to ``_KEEP_AS_ATTRIBUTE`` elements, so that its version stays
    valid for a retained graph). The logits only serve a differentiable backward: up to
    ``_KEEP_AS_ATTRIBUTE`` elements they are held as an attribute, their version checked there
    (saving a leaf costs ~20 us a step); larger ones are saved (memory: released by backward).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, loss: float, grad: Tensor, rest: tuple[Any, ...]
    ) -> Tensor:
        ctx.rest = rest
        if x.numel() <= _KEEP_AS_ATTRIBUTE:
            ctx.kept = (x, x._version)
            ctx.save_for_backward(grad)
        else:
            ctx.kept = None
            ctx.save_for_backward(grad, x)
        # bfloat16: the float32 value rounded once, as out.to(x.dtype) of the general path
        return torch.scalar_tensor(loss, dtype=rest[3])

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        # called only when x needs a gradient: x is the only tensor input
        kept = ctx.kept
        if kept is None:
            grad, x = ctx.saved_tensors
        else:
            (grad,), x = ctx.saved_tensors, kept[0]
        den, scale, state, _ = ctx.rest
        if torch.is_grad_enabled():  # create_graph=True: the gradient must be differentiable
            if kept is not None:
                _check_version(x, kept[1])
            composed_loss, op, targets, kwargs, reduction = state
            recompute = functools.partial(composed_loss, op, targets, kwargs, reduction, None)
            return _differentiable_grad(recompute, x, grad_out), None, None, None
        g = grad_out.item()  # a 0-d CPU tensor (float32, or bfloat16: exact in float32): no device sync
        f = f32(g / den) if den else g
        prev = getattr(ctx, "applied", None)
        if prev is not None:  # a second backward through a retained graph
            return grad * (f / prev), None, None, None
        if f == 0.0 or f != f:
            return (torch.zeros_like(grad) if f == 0.0 else grad * f), None, None, None
        if f != 1.0:
            if kept is not None:  # the node's own buffer: in place through its pointer
                scale(grad.data_ptr(), 0 if grad.dtype is torch.float32 else 1, grad.numel(), f, 0.0)
            else:
                grad.data.mul_(f)  # multi-threaded; .data: the saved tensor's version stays valid
        ctx.applied = f
        return grad, None, None, None
