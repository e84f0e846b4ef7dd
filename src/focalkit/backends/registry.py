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

__all__ = [
    "PLAIN",
    "Backend",
    "CallInfo",
    "Variant",
    "get_registered",
    "register_backend",
    "registered_names",
]

#: Names that the dispatcher itself owns; a plugin cannot take them.
BUILTIN_NAMES = ("auto", "reference", "eager")


@dataclass(frozen=True)
class Variant:
    """The parameter set of the shared per-element pass: which member of the focal family.

    Every loss of the family is one pass over the logits (p = sigmoid(x) per element, or
    log_softmax over dimension 1) with these parameters; the plain focal loss is ``Variant()``
    (:data:`PLAIN`). The kernel contract's ``gamma`` stays a float or a
    :class:`focalkit.PiecewiseGamma` (FLSD-53); ``alpha`` stays the kernels' ``alpha``.

    Attributes:
        kind: ``"focal"`` (Lin et al.: alpha_t (1 - p_t)^gamma CE, plus the Poly-1 term),
            ``"asymmetric"`` (ASL, sigmoid only: gamma is gamma_pos), ``"quality"`` (QFL, sigmoid
            only: |t - p|^gamma BCE, gamma is beta) or ``"varifocal"`` (VFL, sigmoid only).
        epsilon: Poly-1 coefficient (kind ``"focal"``): adds epsilon (1 - p_t)^(gamma + 1).
        gamma_neg: ASL's exponent of the negatives.
        clip: ASL's probability shift of the negatives, p_m = max(p - clip, 0).
        iou_weighted: VFL weights positives by their target score q (else by 1).
    """

    kind: Literal["focal", "asymmetric", "quality", "varifocal"] = "focal"
    epsilon: float = 0.0
    gamma_neg: float = 0.0
    clip: float = 0.0
    iou_weighted: bool = True

    @property
    def plain(self) -> bool:
        """The plain focal loss (no Poly-1 term)."""
        return self.kind == "focal" and self.epsilon == 0.0


#: The plain focal loss.
PLAIN = Variant()


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
        variant: the member of the focal family (:class:`Variant`); None (the default) is the plain
            focal loss (a module-level default instance would not trace under ``torch.compile``).
        piecewise: ``gamma`` is a :class:`focalkit.PiecewiseGamma` (sample-dependent, FLSD-53).
        thresholds: the number of thresholds of that PiecewiseGamma (0 for a float gamma); the
            kernels take up to 4 and leave longer ones to the eager path.
    """

    op: Literal["sigmoid", "softmax"]
    device: torch.device
    dtype: torch.dtype
    labels: bool
    soft: bool
    alpha: Literal["none", "float", "tensor"]
    weight: bool
    reduce: bool
    variant: Variant | None = None
    piecewise: bool = False
    thresholds: int = 0


def _always(info: CallInfo) -> bool:
    return True


def _true() -> bool:
    return True


@dataclass(frozen=True)
class Backend:
    """A kernel implementation of both losses.

    ``sigmoid_focal_fwd`` / ``softmax_focal_fwd`` follow the kernel contract;
    ``supports(info)`` says whether the backend handles a call; ``is_available()`` whether it can
    run on this machine at all; ``accepts_weight`` whether the kernels take a ``weight`` argument;
    ``cpu_answers_fixed`` that for CPU calls ``is_available()`` and ``supports(info)`` depend on
    ``info`` alone (not on the environment or on state that changes), so the dispatcher may cache them.
    """

    name: str
    sigmoid_focal_fwd: Callable[..., Any]
    softmax_focal_fwd: Callable[..., Any]
    supports: Callable[[CallInfo], bool] = field(default=_always)
    is_available: Callable[[], bool] = field(default=_true)
    accepts_weight: bool = False
    cpu_answers_fixed: bool = False

    def accepts(self, info: CallInfo) -> bool:
        """Whether this backend computes the call described by ``info``."""
        return bool(self.supports(info)) and (not info.weight or self.accepts_weight)


_REGISTRY: dict[str, Backend] = {}
#: Bumped on every registration, so that caches of dispatch decisions know when to forget them.
_version = [0]


def register_backend(backend: Backend) -> None:
    """Add or replace a kernel backend (``"fused"``, ``"triton"`` or a name of your own)."""
    if not isinstance(backend, Backend):
        raise TypeError(f"backend must be a focalkit Backend, got {type(backend).__name__}")
    if backend.name in BUILTIN_NAMES:
        raise ValueError(f"the backend name {backend.name!r} is built in and cannot be replaced")
    _REGISTRY[backend.name] = backend
    _version[0] += 1


def get_registered(name: str) -> Backend | None:
    """The registered backend called ``name``, or None."""
    return _REGISTRY.get(name)


def registry_version() -> int:
    """A number that changes whenever a backend is registered (for caches of dispatch decisions)."""
    return _version[0]


def registered_names() -> list[str]:
    """Names of the registered (plugin) backends, in registration order."""
    return list(_REGISTRY)
