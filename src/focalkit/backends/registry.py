"""The backend registry: a leaf module (it imports nothing from focalkit).

A backend is a pair of kernels that follow the kernel contract (see :mod:`focalkit.backends`),
plus ``supports(info)`` saying whether it takes a call described by a :class:`CallInfo`. The
dispatcher (:mod:`focalkit.backends`) reads this registry; the compiled kernels
(:mod:`focalkit.kernels`) write into it when they are imported.

Example:
    >>> import torch
    >>> from focalkit.backends.registry import CallInfo
    >>> info = CallInfo(op="softmax", device=torch.device("cpu"), dtype=torch.float32, labels=True,
    ...                 soft=False, alpha="none", weight=False, reduce=True)
    >>> info.op, info.reduce
    ('softmax', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import torch

__all__ = ["Backend", "CallInfo", "get_registered", "register_backend", "registered_names"]

#: Names that the dispatcher itself owns; a plugin cannot take them.
BUILTIN_NAMES = ("auto", "reference", "eager")


@dataclass(frozen=True)
class CallInfo:
    """What a kernel needs to know about a validated call to decide whether it can take it.

    Attributes:
        op: ``"sigmoid"`` or ``"softmax"``.
        device: the logits' device.
        dtype: the logits' dtype.
        labels: the targets are integer class indices with the class dimension removed (the
            softmax loss's usual form; for the sigmoid loss the ``labels`` mode of
            :func:`focalkit.sigmoid_focal_loss`).
        soft: the softmax targets are class probabilities of the logits' shape.
        alpha: ``"none"``, ``"float"`` (a scalar alpha) or ``"tensor"`` (per class or per element).
        weight: a ``weight`` tensor multiplies the loss.
        reduce: the loss is summed (``reduction`` is ``"mean"`` or ``"sum"``, or a normalizer).
    """

    op: Literal["sigmoid", "softmax"]
    device: torch.device
    dtype: torch.dtype
    labels: bool
    soft: bool
    alpha: Literal["none", "float", "tensor"]
    weight: bool
    reduce: bool


def _always(info: CallInfo) -> bool:
    return True


def _true() -> bool:
    return True


@dataclass(frozen=True)
class Backend:
    """A kernel implementation of both losses.

    ``sigmoid_focal_fwd`` / ``softmax_focal_fwd`` follow the kernel contract;
    ``supports(info)`` says whether the backend handles a call; ``is_available()`` whether it can
    run on this machine at all; ``accepts_weight`` whether the kernels take a ``weight`` argument.
    """

    name: str
    sigmoid_focal_fwd: Callable[..., Any]
    softmax_focal_fwd: Callable[..., Any]
    supports: Callable[[CallInfo], bool] = field(default=_always)
    is_available: Callable[[], bool] = field(default=_true)
    accepts_weight: bool = False

    def accepts(self, info: CallInfo) -> bool:
        """Whether this backend computes the call described by ``info``."""
        return bool(self.supports(info)) and (not info.weight or self.accepts_weight)


_REGISTRY: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    """Add or replace a kernel backend (``"fused"``, ``"triton"`` or a name of your own)."""
    if not isinstance(backend, Backend):
        raise TypeError(f"backend must be a focalkit Backend, got {type(backend).__name__}")
    if backend.name in BUILTIN_NAMES:
        raise ValueError(f"the backend name {backend.name!r} is built in and cannot be replaced")
    _REGISTRY[backend.name] = backend


def get_registered(name: str) -> Backend | None:
    """The registered backend called ``name``, or None."""
    return _REGISTRY.get(name)


def registered_names() -> list[str]:
    """Names of the registered (plugin) backends, in registration order."""
    return list(_REGISTRY)
