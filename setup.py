"""Build the optional C/OpenMP kernel of focalkit (``focalkit/kernels/_focal_cpu*.so``).

Everything else lives in pyproject.toml. The extension is plain C on raw pointers (no torch headers;
it is loaded with ctypes, and ``_focal_cpu_py.c`` adds a few Python entry points for the losses'
eager fast path, so the same file also imports as a module), built with OpenMP where the compiler supports it, and
``optional=True``: on a machine without a C compiler ``pip install`` still succeeds and focalkit
uses its eager closed form on CPU instead.

Portable: the build does not depend on the building machine's CPU. The kernels
(``_focal_cpu_impl.h``) are compiled once per instruction set (baseline x86-64, AVX2 + FMA, AVX-512;
with GCC on x86-64) and the library picks the best one the *running* CPU supports, so a wheel built
anywhere runs on any x86-64 CPU. ``FOCALKIT_CPU_ISA=baseline|avx2|avx512`` at run time caps the
choice (see ``focalkit.kernels.cpu``).

Floating point: no ``-ffast-math``. NaN and infinities must propagate as in PyTorch's own losses
(fast-math's finite-only assumption drops them) and the evaluation order is the one written (no
reassociation). The reductions vectorize through OpenMP ``simd`` reductions and exp/log are the
kernels' own branch-free polynomials, so the loops vectorize without it; ``-fno-math-errno
-fno-trapping-math`` let the compiler if-convert and inline. No multiply-add contraction
(``-ffp-contract=off``): the variants with FMA fuse the polynomials' steps explicitly, so the
scalar and vector copies of a loop round alike and an element's result does not depend on where
it falls in a block (or on how a batch is split, as in data-parallel training).

Environment knobs: ``FOCALKIT_NO_EXT=1`` skips the build; ``FOCALKIT_CPU_FLAGS`` adds compiler flags
(e.g. ``-march=native`` for a build that only has to run on this machine).
"""

from __future__ import annotations

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_KERNELS = "src/focalkit/kernels"


def _extra_flags() -> list[str]:
    return os.environ.get("FOCALKIT_CPU_FLAGS", "").split()


class _BuildExt(build_ext):
    """Adds OpenMP and the floating-point flags (see the module docstring)."""

    def build_extensions(self) -> None:
        ctype = getattr(self.compiler, "compiler_type", "")
        for ext in self.extensions:
            if ctype == "msvc":
                ext.extra_compile_args = ["/O2", "/openmp", "/fp:precise"] + _extra_flags()
            else:
                ext.extra_compile_args = [
                    "-O3", "-fopenmp", "-std=c11", "-fno-math-errno", "-fno-trapping-math",
                    "-ffp-contract=off",
                ] + _extra_flags()  # fmt: skip
                ext.extra_link_args = ["-fopenmp"]
        super().build_extensions()


ext_modules = []
if os.environ.get("FOCALKIT_NO_EXT", "0") in ("", "0"):
    ext_modules.append(
        Extension(
            "focalkit.kernels._focal_cpu",
            sources=[
                f"{_KERNELS}/_focal_cpu.c",  # the baseline variant and the dispatcher
                f"{_KERNELS}/_focal_cpu_avx2.c",
                f"{_KERNELS}/_focal_cpu_avx512.c",
                f"{_KERNELS}/_focal_cpu_py.c",  # the Python entry points of the eager fast path
            ],
            depends=[f"{_KERNELS}/_focal_cpu_impl.h", f"{_KERNELS}/_focal_cpu_family.h",
                     f"{_KERNELS}/_focal_cpu_softmax.h", f"{_KERNELS}/_focal_cpu_softmax_pass.h",
                     f"{_KERNELS}/_focal_cpu_sigmoid_pass.h"],
            optional=True,
        )
    )

setup(ext_modules=ext_modules, cmdclass={"build_ext": _BuildExt})
