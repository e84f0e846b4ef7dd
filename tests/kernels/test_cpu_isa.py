"""One build of the C kernel for every x86-64 CPU (issue 11, portable builds).

The kernels are compiled three times (baseline x86-64, AVX2 + FMA, AVX-512) and the library picks the
best variant the running CPU supports. Tested here: every variant this CPU can run gives the
baseline's results (to float32 rounding: the FMA variants fuse multiply-adds and add vector lanes in
another order); ``FOCALKIT_CPU_ISA`` caps the choice; the default is the best the CPU has; and the
binary is portable: AVX instructions only inside the functions of the AVX variants, no libmvec and no
glibc symbol newer than manylinux2014's 2.17.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys

import pytest
import torch

from focalkit.kernels import cpu

pytestmark = pytest.mark.skipif(not cpu.available(), reason=f"C kernel not built: {cpu.load_error()}")

NAN = float("nan")


@pytest.fixture
def variants():
    """The variants this CPU runs (baseline first); the best one is restored afterwards."""
    names = [n for n in cpu.ISA_NAMES if cpu._set_isa(n) == n]
    yield names
    cpu._set_isa(None)


def _cases():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 7, 50, generator=g) * 4
    x[0, 0, :4] = torch.tensor([NAN, float("inf"), -float("inf"), 1e4])
    t_hard = (torch.rand(x.shape, generator=g) < 0.2).float()
    t_soft = torch.rand(x.shape, generator=g)
    y = torch.randint(0, 8, (6, 50), generator=g)  # 7 = background for the sigmoid
    y[1, :5] = -1
    seg = torch.randn(2, 19, 9, 31, generator=g) * 3
    yseg = torch.randint(0, 19, (2, 9, 31), generator=g)
    yseg[0, 0, :3] = -1
    rows = torch.randn(40, 1000, generator=g) * 3
    yrows = torch.randint(0, 1000, (40,), generator=g)
    alpha = torch.rand(19, generator=g) + 0.1
    for gamma in (0.0, 0.5, 2.0, 3.0):
        sk = dict(gamma=gamma, reduce=False, compute_grad=True)
        yield "sigmoid hard", cpu.sigmoid_focal_fwd, (x, t_hard), dict(labels=False, alpha=0.25, ignore_index=None, label_smoothing=0.0, **sk)
        yield "sigmoid soft", cpu.sigmoid_focal_fwd, (x, t_soft), dict(labels=False, alpha=None, ignore_index=None, label_smoothing=0.1, **sk)
        yield "sigmoid labels", cpu.sigmoid_focal_fwd, (x, y), dict(labels=True, alpha=0.25, ignore_index=-1, label_smoothing=0.0, **sk)
        yield "sigmoid bf16", cpu.sigmoid_focal_fwd, (x.bfloat16(), t_hard), dict(labels=False, alpha=0.25, ignore_index=None, label_smoothing=0.0, **sk)
        for ls in (0.0, 0.1):
            yield f"softmax maps ls={ls}", cpu.softmax_focal_fwd, (seg, yseg), dict(alpha=alpha, ignore_index=-1, label_smoothing=ls, **sk)
            yield f"softmax rows ls={ls}", cpu.softmax_focal_fwd, (rows, yrows), dict(alpha=None, ignore_index=-1, label_smoothing=ls, **sk)
        yield "softmax bf16", cpu.softmax_focal_fwd, (seg.bfloat16(), yseg), dict(alpha=None, ignore_index=-1, label_smoothing=0.0, **sk)


def test_every_variant_gives_the_baseline_results(variants):
    assert variants[0] == "baseline"
    for name, fn, args, kw in _cases():
        cpu._set_isa("baseline")
        want = fn(*args, **kw)
        want_sum = fn(*args, **{**kw, "reduce": True})[0]
        for isa in variants[1:]:
            assert cpu._set_isa(isa) == isa
            got = fn(*args, **kw)
            msg = f"{isa} vs baseline: {name}, gamma {kw['gamma']}"
            assert torch.equal(got[1], want[1]), msg
            tol = dict(rtol=2e-2, atol=1e-4) if got[2].dtype == torch.bfloat16 else dict(rtol=5e-6, atol=1e-7)
            torch.testing.assert_close(got[0], want[0], rtol=5e-6, atol=1e-7, equal_nan=True, msg=msg)
            torch.testing.assert_close(got[2], want[2], equal_nan=True, msg=msg, **tol)
            if torch.isfinite(want_sum):
                torch.testing.assert_close(fn(*args, **{**kw, "reduce": True})[0], want_sum, rtol=1e-5, atol=1e-6)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not _cpu_flags(), reason="x86-64 Linux only")
def test_the_default_is_the_best_variant_this_cpu_has(variants):
    flags = _cpu_flags()
    if {"avx512f", "avx512vl", "avx512bw", "avx512dq", "avx2", "fma"} <= flags:
        best = "avx512"
    elif {"avx2", "fma"} <= flags:
        best = "avx2"
    else:
        best = "baseline"
    assert cpu._set_isa(None) == best
    assert variants[-1] == best


_ENV_CHILD = "import warnings; warnings.simplefilter('always'); from focalkit.kernels import cpu; print(cpu.isa())"


@pytest.mark.parametrize("value", ["baseline", "avx2", "avx512", "auto", "sse9"])
def test_focalkit_cpu_isa_caps_the_variant(variants, value):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["FOCALKIT_CPU_ISA"] = value
    r = subprocess.run([sys.executable, "-c", _ENV_CHILD], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    if value in cpu.ISA_NAMES:  # the best variant at most that one
        want = max((v for v in variants if cpu.ISA_NAMES.index(v) <= cpu.ISA_NAMES.index(value)),
                   key=cpu.ISA_NAMES.index)  # fmt: skip
    else:
        want = variants[-1]
    assert r.stdout.strip() == want
    assert ("is not one of" in r.stderr) == (value == "sse9")


def _objdump() -> str | None:
    return shutil.which("objdump")


def _library_path() -> str:
    return cpu._lib._name  # the loaded build


@pytest.mark.skipif(_objdump() is None or platform.machine() not in ("x86_64", "AMD64"), reason="needs objdump, x86-64")
def test_avx_instructions_only_in_the_avx_variants():
    """A wheel built anywhere must run on a CPU without AVX: VEX/EVEX code only where it is dispatched."""
    cpu._load()
    out = subprocess.run([_objdump(), "-d", "--no-show-raw-insn", _library_path()], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    fn, avx_outside, avx_inside = "", set(), set()
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            fn = m.group(1)
            continue
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1].split() and parts[1].split()[0].startswith("v"):
            (avx_inside if re.search(r"_avx(2|512)\b", fn) else avx_outside).add(fn)
    assert not avx_outside, f"AVX instructions outside the dispatched variants: {sorted(avx_outside)}"
    assert any("_avx2" in f for f in avx_inside) and any("_avx512" in f for f in avx_inside)


@pytest.mark.skipif(_objdump() is None or not sys.platform.startswith("linux"), reason="needs objdump, Linux")
def test_no_libmvec_and_no_new_glibc_symbols():
    cpu._load()
    out = subprocess.run([_objdump(), "-T", _library_path()], capture_output=True, text=True, check=True).stdout
    assert "_ZGV" not in out  # glibc's vector math library (GLIBC_2.22+ and CPU-specific)
    versions = {tuple(int(p) for p in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)}
    assert versions and max(versions) <= (2, 17), sorted(versions)
