"""Build the optional C/OpenMP kernel of focalkit (``focalkit/kernels/_focal_cpu*.so``).

Everything else lives in pyproject.toml. The extension is plain C on raw pointers (no Python or
torch headers; it is loaded with ctypes), built with OpenMP where the compiler supports it, and
``optional=True``: on a machine without a C compiler ``pip install`` still succeeds and focalkit
uses its eager closed form on CPU instead.

Floating point: no ``-ffast-math``. NaN and infinities must propagate as in PyTorch's own losses
(fast-math's finite-only assumption drops them) and the evaluation order is the one written (no
reassociation). The reductions vectorize through OpenMP ``simd`` reductions and exp/log are the
kernels' own branch-free polynomials, so the loops vectorize without it; ``-fno-math-errno
-fno-trapping-math`` let the compiler if-convert and inline, ``-ffp-contract=fast`` lets it fuse
multiply-adds where the CPU has FMA (``-std=c99`` alone would turn that off).

Environment knobs: ``FOCALKIT_NO_EXT=1`` skips the build; ``FOCALKIT_CPU_FLAGS`` replaces the
architecture flags (default: AVX2/FMA when the building CPU has them, else the compiler's
baseline).
"""

from __future__ import annotations

import os
import platform

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_KERNELS = "src/focalkit/kernels"


def _arch_flags() -> list[str]:
    env = os.environ.get("FOCALKIT_CPU_FLAGS")
    if env is not None:
        return env.split()
    if platform.machine() in ("x86_64", "AMD64"):
        try:
            with open("/proc/cpuinfo") as f:
                flags = f.read()
        except OSError:
            return []
        if " avx2" in flags and " fma" in flags:
            return ["-mavx2", "-mfma"]
    return []


class _BuildExt(build_ext):
    """Adds OpenMP and the floating-point flags (see the module docstring)."""

    def build_extensions(self) -> None:
        ctype = getattr(self.compiler, "compiler_type", "")
        for ext in self.extensions:
            if ctype == "msvc":
                ext.extra_compile_args = ["/O2", "/openmp", "/fp:precise"]
            else:
                ext.extra_compile_args = [
                    "-O3", "-fopenmp", "-std=c99", "-fno-math-errno", "-fno-trapping-math",
                    "-ffp-contract=fast",
                ] + _arch_flags()  # fmt: skip
                ext.extra_link_args = ["-fopenmp"]
        super().build_extensions()


ext_modules = []
if os.environ.get("FOCALKIT_NO_EXT", "0") in ("", "0"):
    ext_modules.append(
        Extension(
            "focalkit.kernels._focal_cpu",
            sources=[f"{_KERNELS}/_focal_cpu.c"],
            depends=[f"{_KERNELS}/_focal_cpu_impl.h"],
            optional=True,
        )
    )

setup(ext_modules=ext_modules, cmdclass={"build_ext": _BuildExt})
