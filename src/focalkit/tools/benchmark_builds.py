"""Other builds of the C kernel side by side in one benchmark run (``focalkit bench --cpu-kernel``).

``NAME=PATH`` loads another ``_focal_cpu*.so`` (say main's and a branch's) next to the installed
one, so that the benchmark times both on the same tensors in one process; a build of an older ABI
is adapted to today's calls.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["load_cpu_kernels"]


class _OlderBuild:
    """A build of an older ABI seen through today's calls (benchmarks only): ABI 1 had no
    out-of-range count in ``fk_sigmoid_labels``; before ABI 3 there is no ``fk_softmax_soft`` (its rows
    fail with a note); before ABI 4 no ``*_family`` entry points (the plain calls are unchanged); before
    ABI 5 no ``fk_softmax_soft_nbad`` (the fast path's ctypes entry points then check the targets
    themselves)."""

    def __init__(self, lib: Any, abi: int) -> None:
        import ctypes

        vp, i, i64, f, d = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_float, ctypes.c_double
        i64p = ctypes.POINTER(ctypes.c_int64)
        self._lib, self._abi = lib, abi
        lib.fk_sigmoid_dense.restype = lib.fk_sigmoid_labels.restype = lib.fk_softmax_labels.restype = d
        lib.fk_sigmoid_dense.argtypes = [vp, i, vp, i64, f, i, f, i, f, f, vp, vp, i64p, i]
        lib.fk_sigmoid_labels.argtypes = [vp, i, vp, i64, i64, i64, f, i, f, i, i64, f, vp, vp, i64p] + (
            [i64p, i] if abi >= 2 else [i])
        lib.fk_softmax_labels.argtypes = [vp, i, vp, i64, i64, i64, vp, f, i64, f, vp, vp, i64p, i64p, i]
        self.fk_sigmoid_dense = lib.fk_sigmoid_dense
        self.fk_softmax_labels = lib.fk_softmax_labels
        if abi >= 3:  # ABI 3: soft targets and the per-CPU variants (ABI 4 added the *_family calls)
            lib.fk_softmax_soft.restype = d
            lib.fk_softmax_soft.argtypes = [vp, i, vp, i, i64, i64, i64, vp, f, f, vp, vp, i64p, i]
            self.fk_softmax_soft = lib.fk_softmax_soft
            if hasattr(lib, "fk_set_cpu_isa"):
                lib.fk_set_cpu_isa.restype = lib.fk_cpu_isa.restype = i
                lib.fk_set_cpu_isa.argtypes, lib.fk_cpu_isa.argtypes = [i], []
                self.fk_set_cpu_isa, self.fk_cpu_isa = lib.fk_set_cpu_isa, lib.fk_cpu_isa

    def fk_sigmoid_labels(self, *args: Any) -> float:
        if self._abi >= 2:
            return self._lib.fk_sigmoid_labels(*args)
        return self._lib.fk_sigmoid_labels(*args[:-2], args[-1])  # no nbad: it stays 0

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"this build (ABI {self._abi}) has no {name}")


def load_cpu_kernels(specs: list[str] | None) -> dict[str, Any]:
    """``NAME=PATH`` or ``NAME=PATH@ISA`` (a build with per-CPU variants, capped at ``ISA``)."""
    import shutil
    import tempfile

    from focalkit.kernels import cpu as fkcpu

    out: dict[str, Any] = {}
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        path, _, isa = path.partition("@")
        if not sep or not name or not path:
            raise SystemExit(f"--cpu-kernel takes NAME=PATH or NAME=PATH@ISA, got {spec!r}")
        path = os.path.abspath(path)
        if isa:
            # a private copy: the dynamic loader shares one instance (and its ISA choice) per file
            copy = os.path.join(tempfile.mkdtemp(prefix="focalkit-bench-"), os.path.basename(path))
            shutil.copy(path, copy)
            path = copy
        try:
            lib = fkcpu.load_library(path)
        except OSError:  # an older build (say main's before an ABI change): adapt its calls
            raw = fkcpu._cdll_passive_omp(path)
            abi = raw.fk_abi_version()
            if not 1 <= abi < fkcpu.ABI_VERSION:
                raise
            lib = _OlderBuild(raw, abi)
        if isa:
            if isa not in fkcpu.ISA_NAMES or not hasattr(lib, "fk_set_cpu_isa"):
                raise SystemExit(f"--cpu-kernel {spec!r}: no variant {isa!r} in that build")
            got = fkcpu.ISA_NAMES[lib.fk_set_cpu_isa(fkcpu.ISA_NAMES.index(isa))]
            if got != isa:
                raise SystemExit(f"--cpu-kernel {spec!r}: this CPU runs at most {got!r}")
        out[name] = lib
    return out
