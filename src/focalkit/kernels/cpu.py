"""The CPU kernel: focal loss and its analytic gradient in one OpenMP pass (C, loaded with ctypes).

``_focal_cpu.c`` is built at install time by ``setup.py`` (optional: without a compiler the build is
skipped and focalkit uses its eager closed form). It reads float32 or bfloat16 logits in place
(float16 is upcast to float32 here first), never materializes a one-hot, runs the softmax over
dimension 1 of (N, C, d1, ..., dk) logits without a transpose copy, and writes the gradient into a
buffer that is reused across calls once nobody else holds it (see :class:`_BufferPool`), so a
training loop does not pay fresh page faults for a new logits-sized tensor every step.

Math (float32, per element / position), as in ``focalkit.backends.closed_form``:

* sigmoid: p = sigmoid(x), q = 1 - p_t = p (1 - t) + (1 - p) t, ce = max(x, 0) - x t + log1p(e^-|x|),
  alpha_t = alpha t + (1 - alpha)(1 - t); loss = alpha_t q^gamma ce and
  dloss/dx = alpha_t q^gamma [(p - t) + gamma (p (1 - p) / q) (1 - 2 t) ce] (ratio := 0 at q = 0).
* softmax: log p = log_softmax(x), om_c = 1 - p_c, w_c = alpha_c t_c; loss = -sum_c w_c om_c^gamma log p_c,
  h_c = om_c^gamma (gamma p_c log p_c / om_c - 1), dloss/dx_j = w_j h_j - p_j sum_c w_c h_c.

The focal family (Poly-1, a piecewise gamma, asymmetric, quality, varifocal: ``variant=``) runs in
the same passes through the ``fk_*_family`` entry points; ``_focal_cpu_family.h`` has its math. The
plain loss keeps its own compiled copy of each pass (``_focal_cpu_*_pass.h``), unchanged.

Finite inputs give results within float32 rounding of the float64 reference. Non-finite logits
propagate as in PyTorch's own losses (the kernel is built without ``-ffast-math``'s finite-only
assumption, with its own NaN-correct exp/log): sigmoid, per element, what
``F.binary_cross_entropy_with_logits`` gives (NaN for NaN, +inf for a confident wrong +-inf, NaN
where PyTorch's is NaN); softmax, per position, NaN for a NaN or +inf logit or all logits -inf, +inf
for a -inf logit of a class with a positive target weight, and a finite loss and gradient for -inf
logits of classes the target leaves out (masking), as ``F.cross_entropy``. The gradient is NaN
wherever the loss is NaN. Ignored elements and positions give exactly 0 whatever their logits.

Instruction sets: one build holds a baseline, an AVX2+FMA and an AVX-512 variant (GCC on x86-64) and
uses the best one the running CPU supports (:func:`isa`). ``FOCALKIT_CPU_ISA=baseline|avx2|avx512``,
set before the first call, caps the choice (for a slow-but-safe run or to compare variants).

Example (needs the built kernel; the test suite skips it, visibly, where it is not built):
    >>> import torch
    >>> from focalkit.kernels import cpu
    >>> loss, count, grad = cpu.sigmoid_focal_fwd(
    ...     torch.zeros(2, 3), torch.ones(2, 3), labels=False, alpha=None, gamma=2.0,
    ...     ignore_index=None, label_smoothing=0.0, reduce=True, compute_grad=True)
    >>> print(round(loss.item(), 4), count.item(), tuple(grad.shape))
    1.0397 6 (2, 3)
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
import warnings
from typing import Any

import torch
from torch import Tensor

from focalkit._torch_compat import storage_use_count

__all__ = [
    "BadLabelsError",
    "available",
    "isa",
    "load_error",
    "load_library",
    "sigmoid_focal_fwd",
    "softmax_focal_fwd",
]

_HERE = os.path.dirname(os.path.abspath(__file__))
_FLOAT_CODES = {torch.float32: 0, torch.bfloat16: 1}
#: The C functions' signatures this module declares (``fk_abi_version`` of the build).
ABI_VERSION = 5
#: The kernel variants, by the level ``fk_cpu_isa`` reports.
ISA_NAMES = ("baseline", "avx2", "avx512")
_INT64 = (-(2**63), 2**63 - 1)
_lib: Any = None
#: The library loaded at first use and the file it came from ((None, None) until then); the
#: benchmark may swap other builds in as ``_lib`` for a while.
_lib_file: tuple[Any, str | None] = (None, None)
_load_error: str | None = None
_loaded = False
_lock = threading.Lock()

_vp, _i64p, _byref = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64), ctypes.byref
_f, _i, _i64, _d = ctypes.c_float, ctypes.c_int, ctypes.c_int64, ctypes.c_double
#: Most thresholds of a piecewise gamma the kernel takes (``FK_MAX_TH``; more run on the eager path).
MAX_THRESHOLDS = 4
_KINDS = {"focal": 0, "asymmetric": 1, "quality": 2, "varifocal": 3}


class _Family(ctypes.Structure):
    """``fk_family`` of ``_focal_cpu_family.h``: the member of the focal family of one call."""

    _fields_ = [
        ("kind", ctypes.c_int32),
        ("iou_weighted", ctypes.c_int32),
        ("epsilon", _f),
        ("gamma_neg", _f),
        ("clip", _f),
        ("th", _f * MAX_THRESHOLDS),
        ("gv", _f * (MAX_THRESHOLDS + 1)),
    ]


def _family(variant: Any, gamma: Any) -> tuple[_Family | None, float]:
    """The C parameter set of a call (None for the plain focal loss with a float gamma) and the
    float gamma the kernel also takes (gamma_pos / beta / the varifocal gamma; the largest piece of a
    piecewise gamma, unused then)."""
    piecewise = hasattr(gamma, "thresholds")
    if not piecewise and (variant is None or variant.plain):
        return None, float(gamma)
    fam = _Family()
    if variant is not None:
        fam.kind = _KINDS[variant.kind]
        fam.iou_weighted = int(bool(variant.iou_weighted))
        fam.epsilon, fam.gamma_neg, fam.clip = variant.epsilon, variant.gamma_neg, variant.clip
    if piecewise:
        th, vals = tuple(gamma.thresholds), tuple(gamma.values)
        if len(th) > MAX_THRESHOLDS:
            raise ValueError(
                f"the CPU kernel takes a PiecewiseGamma with at most {MAX_THRESHOLDS} thresholds, "
                f"got {len(th)}"
            )
        if fam.kind != 0:
            raise ValueError(f"a PiecewiseGamma applies to the focal loss, not to kind {variant.kind!r}")
        g = float(max(vals))
    else:
        th, vals, g = (), (float(gamma),), float(gamma)
    for k in range(MAX_THRESHOLDS):
        fam.th[k] = th[k] if k < len(th) else float("inf")
    for k in range(MAX_THRESHOLDS + 1):
        fam.gv[k] = vals[min(k, len(vals) - 1)]  # values past the last threshold: never read
    return fam, g


def _cdll_passive_omp(path: str) -> Any:
    """Load the kernel with its OpenMP threads sleeping, not spinning, between calls.

    PyTorch ships its own OpenMP runtime, so this library's (libgomp) is a second thread pool on
    the same cores. With the default active wait policy its idle threads spin for a while after
    every call and PyTorch's next operations slow down many-fold on a small machine (and the
    other way round). libgomp reads OMP_WAIT_POLICY once, when it is loaded, so it is set only
    for the load (unless the user set it) and then restored.
    """
    key = "OMP_WAIT_POLICY"
    old = os.environ.get(key)
    if old is None:
        os.environ[key] = os.environ.get("FOCALKIT_OMP_WAIT_POLICY", "PASSIVE")
    try:
        return ctypes.CDLL(path)
    finally:
        if old is None:
            os.environ.pop(key, None)


def load_library(path: str) -> Any:
    """Load one build of the kernel (a ``_focal_cpu*.so``) and declare its functions' signatures.

    Raises ``OSError`` when the file cannot be loaded or has another ABI version. ``_load`` uses it
    for the installed build; ``benchmarks/bench.py --cpu-kernel`` for other builds side by side.
    """
    lib = _cdll_passive_omp(path)
    try:
        version = lib.fk_abi_version()
    except AttributeError as exc:
        raise OSError(f"{path}: not a focalkit kernel ({exc})") from exc
    if version != ABI_VERSION:
        raise OSError(f"{path}: ABI version {version} != {ABI_VERSION}; reinstall (pip install -e .)")
    lib.fk_sigmoid_dense.restype = _d
    lib.fk_sigmoid_dense.argtypes = [
        _vp, _i, _vp, _i64, _f, _i, _f, _i, _f, _f, _vp, _vp, _i64p, _i]
    lib.fk_sigmoid_labels.restype = _d
    lib.fk_sigmoid_labels.argtypes = [
        _vp, _i, _vp, _i64, _i64, _i64, _f, _i, _f, _i, _i64, _f, _vp, _vp, _i64p, _i64p, _i]
    lib.fk_softmax_labels.restype = _d
    lib.fk_softmax_labels.argtypes = [
        _vp, _i, _vp, _i64, _i64, _i64, _vp, _f, _i64, _f, _vp, _vp, _i64p, _i64p, _i]
    lib.fk_softmax_soft.restype = _d
    lib.fk_softmax_soft.argtypes = [
        _vp, _i, _vp, _i, _i64, _i64, _i64, _vp, _f, _f, _vp, _vp, _i64p, _i]
    lib.fk_softmax_soft_nbad.restype = _d
    lib.fk_softmax_soft_nbad.argtypes = [
        _vp, _i, _vp, _i, _i64, _i64, _i64, _vp, _f, _f, _vp, _vp, _i64p, _i64p, _i]
    fam = ctypes.POINTER(_Family)
    lib.fk_sigmoid_dense_family.restype = _d
    lib.fk_sigmoid_dense_family.argtypes = lib.fk_sigmoid_dense.argtypes + [fam]
    lib.fk_sigmoid_labels_family.restype = _d
    lib.fk_sigmoid_labels_family.argtypes = lib.fk_sigmoid_labels.argtypes + [_vp, fam]
    lib.fk_softmax_labels_family.restype = _d
    lib.fk_softmax_labels_family.argtypes = lib.fk_softmax_labels.argtypes + [fam]
    lib.fk_softmax_soft_family.restype = _d
    lib.fk_softmax_soft_family.argtypes = lib.fk_softmax_soft.argtypes + [fam]
    if hasattr(lib, "fk_set_cpu_isa"):  # builds without per-CPU variants have none
        lib.fk_set_cpu_isa.restype = _i
        lib.fk_set_cpu_isa.argtypes = [_i]
        lib.fk_cpu_isa.restype = _i
        lib.fk_cpu_isa.argtypes = []
    return lib


def _apply_isa_env(lib: Any) -> None:
    name = os.environ.get("FOCALKIT_CPU_ISA", "").strip().lower()
    if not name or name == "auto" or not hasattr(lib, "fk_set_cpu_isa"):
        return
    if name not in ISA_NAMES:
        warnings.warn(
            f"FOCALKIT_CPU_ISA={name!r} is not one of {ISA_NAMES} or 'auto'; using the best variant",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    lib.fk_set_cpu_isa(ISA_NAMES.index(name))


def _load() -> Any:
    global _lib, _lib_file, _load_error, _loaded
    if _loaded:
        return _lib
    with _lock:
        if _loaded:
            return _lib
        if os.environ.get("FOCALKIT_DISABLE_CPU_KERNEL", "0") not in ("", "0"):
            _load_error = "disabled by FOCALKIT_DISABLE_CPU_KERNEL"
        else:
            paths = sorted(glob.glob(os.path.join(_HERE, "_focal_cpu*.so")))
            paths += sorted(glob.glob(os.path.join(_HERE, "_focal_cpu*.pyd")))
            if not paths:
                _load_error = "the C extension was not built (no C compiler at install time?)"
            for path in paths:
                try:
                    lib = load_library(path)
                except OSError as exc:
                    _load_error = str(exc)
                    continue
                _apply_isa_env(lib)
                _lib, _lib_file, _load_error = lib, (lib, path), None
                break
        _loaded = True
    return _lib


def available() -> bool:
    """True when the compiled C kernel could be loaded."""
    return _load() is not None


def isa() -> str | None:
    """The instruction-set variant of the C kernel in use: ``"baseline"`` (any CPU), ``"avx2"``
    (AVX2 + FMA) or ``"avx512"``; None when the kernel is not available.

    The best variant the running CPU supports, unless ``FOCALKIT_CPU_ISA`` caps it.

    Example:
        >>> isa() in (None, "baseline", "avx2", "avx512")
        True
    """
    lib = _load()
    if lib is None or not hasattr(lib, "fk_cpu_isa"):
        return None
    return ISA_NAMES[lib.fk_cpu_isa()]


def _set_isa(name: str | None) -> str:
    """Use the best variant at most ``name`` (None: the best); returns the variant now in use.

    For tests and benchmarks that compare the variants in one process; not thread-safe with
    concurrent kernel calls.
    """
    lib = _require()
    level = -1 if name is None else ISA_NAMES.index(name)
    return ISA_NAMES[lib.fk_set_cpu_isa(level)]


def load_error() -> str | None:
    """Why the C kernel is not available (None when it is)."""
    _load()
    return _load_error


class _BufferPool:
    """Reuses gradient buffers that nobody else holds any more.

    A fresh 64 MB tensor costs ~16k page faults (glibc returns large blocks to the OS on free, and
    PyTorch's CPU allocator does not cache). The pool keeps the last few buffers it handed out and
    gives one back out when its storage is referenced by the pool alone (the autograd graph that
    saved it and any ``.grad`` that adopted it are gone), so a steady training loop allocates none.
    """

    #: Buffers below this many bytes come from malloc, whose own cache is fine for them.
    small = 1 << 20

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self.buffers: list[Tensor] = []
        self.lock = threading.Lock()

    @staticmethod
    def _free(t: Tensor) -> bool:
        # Handed-out buffers are views (their own TensorImpl on the same storage): the storage is
        # free when only the pool's tensor (1) and the temporary Python storage object (1) hold it.
        return storage_use_count(t) <= 2

    def get(self, shape: torch.Size, dtype: torch.dtype) -> Tensor:
        numel = 1
        for s in shape:
            numel *= int(s)
        nbytes = numel * dtype.itemsize
        if nbytes < self.small:
            return torch.empty(shape, dtype=dtype)
        with self.lock:
            for i, buf in enumerate(self.buffers):
                if buf.dtype == dtype and buf.numel() == numel and self._free(buf):
                    self.buffers.append(self.buffers.pop(i))
                    return buf.view(shape)
            out = torch.empty(shape, dtype=dtype)
            self.buffers.append(out)
            if len(self.buffers) > self.size:
                # drop the oldest buffer the pool no longer needs to remember
                self.buffers.pop(0)
            return out.view(shape)  # a separate tensor: the pool's own one counts once

    def clear(self) -> None:
        with self.lock:
            self.buffers.clear()


_pool = _BufferPool()


def _nthreads() -> int:
    return max(1, torch.get_num_threads())


def _prep_x(x: Tensor) -> tuple[Tensor, int]:
    if x.dtype is torch.float32 and x.is_cpu and x.is_contiguous():  # the common case, no copy
        return x, 0
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_cpu:
        raise ValueError(f"the CPU kernel needs CPU tensors, x is on {x.device}")
    if x.dtype == torch.float16:
        x = x.float()
    if x.dtype not in _FLOAT_CODES:
        raise TypeError(f"x must be float32, float16 or bfloat16 for the CPU kernel, got {x.dtype}")
    return x.contiguous(), _FLOAT_CODES[x.dtype]


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _labels_int64(targets: Tensor, ignore_index: int | None) -> Tensor:
    """Class indices as contiguous int64 (uint8/int8/int16/int32 widened: no value wraps onto
    ``ignore_index``, which the kernel compares in int64)."""
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise TypeError(f"targets must be an integer tensor of class indices, got {targets.dtype}")
    if ignore_index is not None and not _INT64[0] <= int(ignore_index) <= _INT64[1]:
        raise ValueError(f"ignore_index must fit in int64 (the labels' type), got {ignore_index}")
    if targets.dtype != torch.int64:
        targets = targets.to(torch.int64)
    return targets.contiguous()


def _grad_buffer(xc: Tensor) -> Tensor:
    """A gradient buffer of the contiguous ``xc``'s shape and dtype (from the pool when large)."""
    if xc.nbytes < _pool.small:
        return torch.empty_like(xc, memory_format=torch.contiguous_format)
    return _pool.get(xc.shape, xc.dtype)


class BadLabelsError(ValueError):
    """Class indices outside the valid range, found by the kernel itself (a ``ValueError``).

    The kernel counts them in the pass that computes the loss, so a caller may skip its own
    host-side range check and, on this error, run that check for its own message (the loss
    functions do: the message is the one of ``validate_args``).
    """


def _raise_bad_labels(nbad: int, hi: int, ignore_index: int | None, what: str) -> None:
    if nbad:
        ign = "" if ignore_index is None else f" and not ignore_index={ignore_index}"
        raise BadLabelsError(f"targets: {nbad} class index(es) outside [0, {hi}]{ign} ({what})")


def _require() -> Any:
    lib = _load()
    if lib is None:
        raise RuntimeError(f"focalkit's CPU kernel is not available: {_load_error}")
    return lib


def sigmoid_focal_fwd(
    x: Tensor,
    targets: Tensor,
    *,
    labels: bool,
    alpha: float | None,
    gamma: Any,
    ignore_index: int | None,
    label_smoothing: float,
    reduce: bool,
    compute_grad: bool,
    variant: Any = None,
    scores: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Sigmoid focal loss, its element count and its gradient in one OpenMP pass.

    Args:
        x: logits of any shape (CPU; float32, bfloat16, or float16, which is computed as float32).
        targets: ``labels=False``: values in [0, 1] of x's shape (any dtype); elements equal to
            ``ignore_index`` are ignored. ``labels=True``: integer class indices of shape
            ``x.shape[:1] + x.shape[2:]`` (any integer dtype, compared in int64); C = background,
            ``ignore_index`` drops the position; labels outside [0, C] raise ``ValueError``.
        alpha: weight of positives, or None (varifocal: the weight of the negatives, None = 0.75).
        gamma: >= 0, or a :class:`focalkit.PiecewiseGamma` with at most :data:`MAX_THRESHOLDS`
            thresholds (kind focal); gamma_pos for kind asymmetric, beta for kind quality.
        label_smoothing: t -> t (1 - ls) + ls / 2.
        reduce: sum the loss (float32 0-d) instead of returning it per element (float32, x's shape).
        compute_grad: also return d(sum of loss)/dx in x's dtype (float32 for float16 x).
        variant: the member of the focal family (:class:`focalkit.backends.registry.Variant`), None
            for the plain focal loss; ``_focal_cpu_family.h`` has the math of each kind.
        scores: ``labels=True`` only: the float target value of each position's labelled class
            (shape of ``targets``; quality / varifocal scores), instead of 1.

    Returns:
        ``(loss, count, grad)``: see ``focalkit.backends``; count = non-ignored elements (int64).
        Labels out of range raise :class:`BadLabelsError` (a ``ValueError``).
    """
    lib = _require()
    xc, code = _prep_x(x)
    fam, gamma = _family(variant, gamma)
    ls = float(label_smoothing)
    if scores is not None and (not labels or fam is None):
        raise ValueError("scores are taken with labels=True by the family's kinds only")
    has_alpha = alpha is not None
    a = float(alpha) if has_alpha else 0.0  # type: ignore[arg-type]
    loss_buf = None if reduce else torch.empty(xc.shape, dtype=torch.float32)
    grad = _grad_buffer(xc) if compute_grad else None
    count = ctypes.c_int64(0)
    if labels:
        if xc.dim() < 2:
            raise ValueError(f"labels=True needs x of shape (N, C, *d), got {tuple(xc.shape)}")
        n, c = xc.shape[0], xc.shape[1]
        inner = xc.numel() // max(n * c, 1)
        if tuple(targets.shape) != tuple(xc.shape[:1] + xc.shape[2:]):
            raise ValueError(
                f"targets must have shape {tuple(xc.shape[:1] + xc.shape[2:])} for labels=True, "
                f"got {tuple(targets.shape)}"
            )
        y = _labels_int64(targets, ignore_index)
        nbad = ctypes.c_int64(0)
        args = (
            xc.data_ptr(), code, y.data_ptr(), n, c, inner, a, int(has_alpha), gamma,
            int(ignore_index is not None), int(ignore_index or 0), ls,
            _ptr(loss_buf), _ptr(grad), ctypes.byref(count), ctypes.byref(nbad), _nthreads(),
        )  # fmt: skip
        if fam is None:
            total = lib.fk_sigmoid_labels(*args)
        else:
            sc = None
            if scores is not None:
                if tuple(scores.shape) != tuple(targets.shape):
                    raise ValueError(
                        f"scores must have the labels' shape {tuple(targets.shape)}, got {tuple(scores.shape)}"
                    )
                sc = scores.to(torch.float32).contiguous()
            total = lib.fk_sigmoid_labels_family(*args, _ptr(sc), ctypes.byref(fam))
        _raise_bad_labels(nbad.value, c, ignore_index, f"the value {c} means background")
    else:
        if tuple(targets.shape) != tuple(xc.shape):
            raise ValueError(f"targets must have x's shape {tuple(xc.shape)}, got {tuple(targets.shape)}")
        t = targets.to(torch.float32).contiguous()
        args = (
            xc.data_ptr(), code, t.data_ptr(), xc.numel(), a, int(has_alpha), gamma,
            int(ignore_index is not None), float(ignore_index or 0), ls,
            _ptr(loss_buf), _ptr(grad), ctypes.byref(count), _nthreads(),
        )  # fmt: skip
        if fam is None:
            total = lib.fk_sigmoid_dense(*args)
        else:
            total = lib.fk_sigmoid_dense_family(*args, ctypes.byref(fam))
    loss = torch.scalar_tensor(total, dtype=torch.float32) if reduce else loss_buf
    assert loss is not None
    return loss, torch.scalar_tensor(count.value, dtype=torch.int64), grad


def softmax_focal_fwd(
    x: Tensor,
    targets: Tensor,
    *,
    alpha: Tensor | None,
    gamma: Any,
    ignore_index: int,
    label_smoothing: float,
    reduce: bool,
    compute_grad: bool,
    variant: Any = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Softmax focal loss over dimension 1, its position count and its gradient in one pass.

    Args:
        x: (N, C) or (N, C, d1, ..., dk) logits on CPU (float32, bfloat16 or float16); the
            softmax runs over C in place, without a transpose copy.
        targets: integer class indices (N, d1, ..., dk); positions equal to ``ignore_index`` are
            ignored; any integer dtype (compared in int64, so a uint8 label never wraps onto
            ``ignore_index``). Labels outside [0, C) raise ``ValueError``. Or class probabilities
            (mixup, cutmix, distillation): a floating-point tensor of x's shape, read in place when
            float32 or bfloat16 (other float dtypes are converted to float32); ``ignore_index``
            does not apply and every position counts.
        alpha: None or (C,) non-negative class weights. gamma: >= 0, or a
            :class:`focalkit.PiecewiseGamma` (at p_c per class, at p_t for the Poly-1 term).
        label_smoothing: as ``F.cross_entropy``: t -> (1 - ls) t + ls / C (t one-hot for labels).
        reduce / compute_grad: as :func:`sigmoid_focal_fwd`.
        variant: None (plain) or a Variant of kind ``"focal"``: its ``epsilon`` adds the Poly-1
            term eps (1 - p_t)^(g_t + 1), p_t = sum_c t_c p_c, per position.

    Returns:
        ``(loss, count, grad)``: summed (or per-position (N, d1, ..., dk)) float32 loss, number of
        non-ignored positions (int64), and d(sum of loss)/dx in x's dtype (float32 for float16 x) and layout.
    """
    lib = _require()
    xc, code = _prep_x(x)
    if variant is not None and variant.kind != "focal":
        raise ValueError(f"the softmax kernel takes the focal kind only, got {variant.kind!r}")
    fam, gamma = _family(variant, gamma)
    if xc.dim() < 2:
        raise ValueError(f"x must be (N, C) or (N, C, *d), got shape {tuple(xc.shape)}")
    n, c = xc.shape[0], xc.shape[1]
    inner = xc.numel() // max(n * c, 1)
    pos_shape = xc.shape[:1] + xc.shape[2:]
    soft = targets.is_floating_point()
    if soft:
        if tuple(targets.shape) != tuple(xc.shape):
            raise ValueError(
                f"class-probability targets must have x's shape {tuple(xc.shape)}, got {tuple(targets.shape)}"
            )
        tcode = 1 if targets.dtype == torch.bfloat16 else 0
        y = targets.contiguous() if tcode else targets.to(torch.float32).contiguous()
    elif targets.shape != pos_shape:
        raise ValueError(f"targets must have shape {tuple(pos_shape)}, got {tuple(targets.shape)}")
    else:
        y = _labels_int64(targets, ignore_index)
    a = None
    if alpha is not None:
        a = torch.as_tensor(alpha, dtype=torch.float32).contiguous()
        if a.shape != (c,):
            raise ValueError(f"alpha must have shape ({c},), got {tuple(a.shape)}")
    loss_buf = None if reduce else torch.empty(pos_shape, dtype=torch.float32)
    grad = _grad_buffer(xc) if compute_grad else None
    count, nbad = _i64(0), _i64(0)
    tail = () if fam is None else (_byref(fam),)
    if n * c * inner > 0 and soft:
        total = (lib.fk_softmax_soft if fam is None else lib.fk_softmax_soft_family)(
            xc.data_ptr(), code, y.data_ptr(), tcode, n, c, inner, _ptr(a), gamma,
            float(label_smoothing), _ptr(loss_buf), _ptr(grad), ctypes.byref(count), _nthreads(),
            *tail,
        )  # fmt: skip
    elif n * c * inner > 0:
        total = (lib.fk_softmax_labels if fam is None else lib.fk_softmax_labels_family)(
            xc.data_ptr(), code, y.data_ptr(), n, c, inner, _ptr(a), gamma, int(ignore_index),
            float(label_smoothing), _ptr(loss_buf), _ptr(grad), ctypes.byref(count),
            ctypes.byref(nbad), _nthreads(), *tail,
        )  # fmt: skip
    else:
        total = 0.0
        if grad is not None:
            grad.zero_()
        if loss_buf is not None:
            loss_buf.zero_()
    _raise_bad_labels(nbad.value, c - 1, ignore_index, f"{c} classes")
    loss = torch.scalar_tensor(total, dtype=torch.float32) if reduce else loss_buf
    assert loss is not None
    return loss, torch.scalar_tensor(count.value, dtype=torch.int64), grad
