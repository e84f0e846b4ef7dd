"""Which implementation computes the loss: the backend registry and the dispatcher.

Backends:

* ``"reference"``: plain differentiable torch ops, gradients by autograd (``focalkit._composed``).
  Slowest; supports everything, including gradients for ``alpha``, ``weight`` and soft targets,
  and double backward.
* ``"eager"``: the closed form (``focalkit._eager``): loss and analytic gradient in one forward
  pass of composed torch ops; backward only scales the saved gradient. Any device, any dtype.
* ``"fused"``: compiled kernels (a C/OpenMP kernel on CPU, Triton on CUDA), registered by
  ``focalkit.kernels`` when they are available.
* ``"triton"``: the Triton kernels forced on any device (on CPU only under ``TRITON_INTERPRET=1``),
  for testing.
* ``"auto"`` (default): ``"fused"`` where it is available and supports the call, else ``"eager"``.

Whatever the choice, a call whose ``alpha``, ``weight`` or ``targets`` require gradients takes the
``"reference"`` path, and a call the chosen kernels do not support falls back to ``"eager"``.

Kernel contract: a backend provides ``sigmoid_focal_fwd`` and ``softmax_focal_fwd`` taking
``(x, targets, *, [labels,] alpha, gamma, ignore_index, label_smoothing, reduce, compute_grad)``
and returning ``(loss, count, grad)``: the float32 sum (``reduce=True``) or per-element loss, the
number of non-ignored elements (sigmoid) or positions (softmax), and d(sum of loss)/d(x) in x's
dtype (or None). ``focalkit._eager`` documents the math.

Example:
    >>> import focalkit as fk
    >>> with fk.use_backend("eager"):
    ...     fk.get_backend()
    'eager'
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from focalkit import _eager

__all__ = [
    "Backend",
    "available_backends",
    "get_backend",
    "register_backend",
    "set_backend",
    "use_backend",
]

BACKEND_NAMES = ("auto", "reference", "eager", "fused", "triton")


def _always(info: dict[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class Backend:
    """A kernel implementation of both losses.

    ``supports(info)`` says whether it handles a call; ``info`` holds ``op`` ("sigmoid" or
    "softmax"), ``device`` (a torch.device), ``dtype``, ``labels`` (sigmoid class indices),
    ``soft`` (softmax class probabilities), ``alpha`` ("none", "float" or "tensor"),
    ``weight`` (bool) and ``reduce`` (bool). ``is_available()`` says whether it can run here at all.
    """

    name: str
    sigmoid_focal_fwd: Callable[..., Any]
    softmax_focal_fwd: Callable[..., Any]
    supports: Callable[[dict[str, Any]], bool] = field(default=_always)
    is_available: Callable[[], bool] = field(default=lambda: True)
    accepts_weight: bool = False


_EAGER = Backend(
    "eager", _eager.sigmoid_focal_fwd, _eager.softmax_focal_fwd, accepts_weight=True
)
_REGISTRY: dict[str, Backend] = {"eager": _EAGER}
_current: contextvars.ContextVar[str] = contextvars.ContextVar("focalkit_backend", default="auto")
_plugins_loaded = False


def _load_plugins() -> None:
    """Import ``focalkit.kernels`` (if present) once; it registers the compiled backends."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    if importlib.util.find_spec("focalkit.kernels") is not None:
        importlib.import_module("focalkit.kernels")


def register_backend(backend: Backend) -> None:
    """Add or replace a kernel backend (``"fused"``, ``"triton"`` or a name of your own)."""
    if backend.name in ("auto", "reference", "eager"):
        raise ValueError(f"the backend name {backend.name!r} is built in and cannot be replaced")
    _REGISTRY[backend.name] = backend


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine, ``"reference"`` and ``"eager"`` first."""
    _load_plugins()
    names = ["reference", "eager"]
    names += [n for n, b in _REGISTRY.items() if n != "eager" and b.is_available()]
    return names


def set_backend(name: str) -> None:
    """Choose the backend for all later calls in this context (``"auto"`` restores the default)."""
    _check_name(name)
    _current.set(name)


def get_backend() -> str:
    """The backend name in force (``"auto"`` unless set)."""
    return _current.get()


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Context manager that forces a backend inside a ``with`` block."""
    _check_name(name)
    token = _current.set(name)
    try:
        yield
    finally:
        _current.reset(token)


def _check_name(name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string, got {type(name).__name__}")
    if name in ("auto", "reference", "eager"):
        return
    _load_plugins()
    if name not in _REGISTRY:
        known = sorted(set(BACKEND_NAMES) | set(_REGISTRY))
        raise ValueError(f"unknown backend {name!r}; expected one of {known}")
    if not _REGISTRY[name].is_available():
        raise ValueError(
            f"backend {name!r} is not available on this machine; available: {available_backends()}"
        )


def _current_name() -> str:
    return _current.get()


# torch.compile cannot trace ContextVar.get: mark the read as a constant of the traced graph. This
# is what torch.compiler.assume_constant_result does; set directly so that importing focalkit does
# not import torch._dynamo (and with it triton).
_current_name._dynamo_marked_constant = True  # type: ignore[attr-defined]
_load_plugins._dynamo_marked_constant = True  # type: ignore[attr-defined]  # run at trace time


def resolve(info: dict[str, Any], backend: str | None = None) -> Backend | None:
    """The backend that computes a call: None means the composed ``"reference"`` path.

    Under ``torch.compile`` the backend in force is read once, when the graph is traced.
    """
    name = backend if backend is not None else _current_name()
    if name == "reference":
        return None
    if name == "auto":
        _load_plugins()
        fused = _REGISTRY.get("fused")
        if fused is not None and fused.is_available() and _accepts(fused, info):
            return fused
        return _EAGER
    chosen = _REGISTRY.get(name)
    if chosen is None:
        _check_name(name)
        return _EAGER
    return chosen if _accepts(chosen, info) else _EAGER


def _accepts(backend: Backend, info: dict[str, Any]) -> bool:
    return bool(backend.supports(info)) and (not info.get("weight") or backend.accepts_weight)
