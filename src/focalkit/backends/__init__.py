"""Which implementation computes the loss: the dispatcher.

Backends:

* ``"reference"``: plain differentiable torch ops, gradients by autograd
  (:mod:`focalkit.backends.composed`). Slowest; supports everything, including gradients for
  ``alpha``, ``weight`` and soft targets, and double backward.
* ``"eager"``: the closed form (:mod:`focalkit.backends.closed_form`): loss and analytic gradient in
  one forward pass of composed torch ops; backward only scales the saved gradient. Any device,
  any dtype.
* ``"fused"``: compiled kernels (a C/OpenMP kernel on CPU, Triton on CUDA), registered by
  :mod:`focalkit.kernels` when they are available.
* ``"triton"``: the Triton kernels forced on any device (on CPU only under ``TRITON_INTERPRET=1``),
  for testing.
* ``"auto"`` (default): ``"fused"`` where it is available and supports the call, else ``"eager"``.

Whatever the choice, a call whose ``alpha``, ``weight`` or ``targets`` require gradients takes the
``"reference"`` path, and a call the chosen kernels do not support falls back to ``"eager"``.

Kernel contract: a backend provides ``sigmoid_focal_fwd`` and ``softmax_focal_fwd`` taking
``(x, targets, *, [labels,] alpha, gamma, ignore_index, label_smoothing, reduce, compute_grad)``
and returning ``(loss, count, grad)``: the float32 sum (``reduce=True``) or per-element loss, the
number of non-ignored elements (sigmoid) or positions (softmax), and d(sum of loss)/d(x) in x's
dtype, float32 for float16 x (so that a loss scale can still rescue gradients below float16's
range), or None. :mod:`focalkit.backends.closed_form` documents the math. Which backend takes a
call is decided from a :class:`~focalkit.backends.registry.CallInfo`.

The focal family rides on the same contract: ``gamma`` may be a :class:`focalkit.PiecewiseGamma`
(``CallInfo.piecewise``), and a ``variant=`` keyword (a :class:`~focalkit.backends.registry.Variant`,
``CallInfo.variant``; absent for the plain focal loss) selects Poly-1 (both passes) or the
asymmetric / quality / varifocal kinds of the sigmoid pass; the quality and varifocal kinds with
class-index targets may also get ``scores=`` (the labelled class's target value per position).
:mod:`focalkit.backends.closed_form_family` documents their math.

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
from typing import Any, Iterator

import torch

from focalkit._torch_compat import mark_trace_constant
from focalkit.backends import closed_form
from focalkit.backends.registry import (
    BUILTIN_NAMES,
    Backend,
    CallInfo,
    get_registered,
    register_backend,
    registered_names,
    registry_version,
)

__all__ = [
    "Backend",
    "CallInfo",
    "available_backends",
    "get_backend",
    "kernel_status",
    "register_backend",
    "resolve",
    "set_backend",
    "use_backend",
]

BACKEND_NAMES = ("auto", "reference", "eager", "fused", "triton")

EAGER = Backend(
    "eager", closed_form.sigmoid_focal_fwd, closed_form.softmax_focal_fwd, accepts_weight=True
)
_current: contextvars.ContextVar[str] = contextvars.ContextVar("focalkit_backend", default="auto")
_plugins_loaded = False


# Run once at trace time under torch.compile (the backends are a property of the machine).
@mark_trace_constant
def _load_plugins() -> None:
    """Import :mod:`focalkit.kernels` (if present) once; it registers the compiled backends."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    if importlib.util.find_spec("focalkit.kernels") is not None:
        importlib.import_module("focalkit.kernels")


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine, ``"reference"`` and ``"eager"`` first."""
    _load_plugins()
    names = ["reference", "eager"]
    for n in registered_names():
        b = get_registered(n)
        if b is not None and b.is_available():
            names.append(n)
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
    if name in BUILTIN_NAMES:
        return
    _load_plugins()
    backend = get_registered(name)
    if backend is None:
        known = sorted(set(BACKEND_NAMES) | set(registered_names()))
        raise ValueError(f"unknown backend {name!r}; expected one of {known}")
    if not backend.is_available():
        raise ValueError(
            f"backend {name!r} is not available on this machine; available: {available_backends()}"
        )


# torch.compile cannot trace ContextVar.get: the backend in force is read once, at trace time.
@mark_trace_constant
def _current_name() -> str:
    return _current.get()


#: resolve()'s answers for CPU calls, per (backend name, CallInfo); forgotten when a backend is registered.
_resolved: dict[tuple[str, CallInfo], Backend | None] = {}
_resolved_version = [-1]


def resolve(info: CallInfo) -> Backend | None:
    """The backend that computes a call: None means the composed ``"reference"`` path.

    Under ``torch.compile`` the backend in force is read once, when the graph is traced. The
    answers of ``"auto"`` and ``"fused"`` for CPU tensors are cached per (name, ``info``) when the
    ``"fused"`` backend says they depend on the call alone (``Backend.cpu_answers_fixed``, true of
    focalkit's own); registering a backend clears the cache.
    """
    name = _current_name()
    if not (name == "auto" or name == "fused") or torch.compiler.is_compiling():
        return _resolve(name, info)
    if _resolved_version[0] != registry_version():
        _resolved.clear()
        _resolved_version[0] = registry_version()
    key = (name, info)
    try:
        return _resolved[key]  # only CPU calls are cached: a hit needs no device test (~0.25 us)
    except KeyError:
        pass
    backend = _resolve(name, info)
    if info.device.type != "cpu":
        return backend
    fused = get_registered("fused")
    if fused is not None and fused.cpu_answers_fixed and len(_resolved) < 4096:
        _resolved[key] = backend
    return backend


def _resolve(name: str, info: CallInfo) -> Backend | None:
    if name == "reference":
        return None
    if name == "eager":
        return EAGER
    _load_plugins()
    if name == "auto":
        fused = get_registered("fused")
        if fused is not None and fused.is_available() and fused.accepts(info):
            return fused
        return EAGER
    chosen = get_registered(name)
    if chosen is None:
        _check_name(name)  # raises: the name was never registered
        return EAGER
    return chosen if chosen.accepts(info) else EAGER


def kernel_status() -> dict[str, Any]:
    """What the compiled kernels can do on this machine (``{}`` without :mod:`focalkit.kernels`).

    ``cpu_kernel`` and ``triton`` say whether each can run here (and why not); ``triton_checks``
    lists the Triton kernel variants checked on their first call against the eager closed form
    (``"ok"`` or ``"failed: ..."``, after which that variant uses the closed form).
    """
    _load_plugins()
    try:
        kernels = importlib.import_module("focalkit.kernels")
    except ImportError:  # pragma: no cover - a source tree without the kernels package
        return {}
    return kernels.kernel_status()
