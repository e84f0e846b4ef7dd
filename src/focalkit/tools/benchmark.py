"""Forward+backward time and peak memory of focal loss: focalkit's paths against every peer.

Run ``focalkit bench`` or, in a source checkout, ``python benchmarks/bench.py`` (``--quick`` for a
small smoke run, ``--json PATH`` to save the results, ``--device cuda`` on a GPU). This module is part
of the package so that ``focalkit bench`` works from any installation; ``benchmarks/bench.py`` runs it. Every method of a case runs side by side in one process on the
same tensors; the time is the median of ``--repeats`` timed forward+backward samples after warm-up
(each the mean of as many calls as last 2 ms: one call for the large cases), the
ratio is to PyTorch's cross-entropy of the same form (``binary_cross_entropy_with_logits`` for the
sigmoid cases, ``cross_entropy`` for the softmax ones), and "floor" is one elementwise pass
(``torch.sigmoid`` of the logits, forward only): the memory-bandwidth floor.

Peak memory above the inputs: on CUDA ``torch.cuda.max_memory_allocated`` around one call minus the
memory allocated before it. On CPU PyTorch keeps no allocation statistics, so one extra (untimed)
call runs under ``torch.profiler`` with ``profile_memory=True``; the allocation and free events of
PyTorch's CPU allocator are replayed in time order and the peak of their running sum is reported.
focalkit's gradient cache is emptied before that call, so its buffer counts as an allocation.
Memory allocated outside PyTorch's allocator (none of the methods here do) would not be seen.

``--cpu-kernel NAME=PATH`` (repeatable) adds rows ``focalkit fused [NAME]``: the fused path with
another build of the C kernel (a ``_focal_cpu*.so``; an older ABI is adapted) swapped in for the forward call,
so that two builds (say main's and a branch's) are timed side by side in one run on the same tensors;
``NAME=PATH@ISA`` runs that build's ``baseline``/``avx2``/``avx512`` variant.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

import focalkit as fk
from focalkit.tools.benchmark_builds import load_cpu_kernels

ALPHA, GAMMA, IGNORE = 0.25, 2.0, 255


@dataclass
class Result:
    case: str
    method: str
    dtype: str
    ms: float | None = None
    ms_all: list[float] = field(default_factory=list)
    ratio: float | None = None
    peak_mb: float | None = None
    compile_s: float | None = None
    note: str = ""


# --------------------------------------------------------------------------- peer formulas


def torchvision_sigmoid_focal(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """torchvision.ops.sigmoid_focal_loss, re-typed from its documentation/source (reduction='mean')."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** GAMMA)
    alpha_t = ALPHA * t + (1 - ALPHA) * (1 - t)
    return (alpha_t * loss).mean()


def typical_softmax_focal(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The usual multi-class focal loss: cross-entropy per position, p_t = exp(-ce), mean over kept."""
    ce = F.cross_entropy(x, y, reduction="none", ignore_index=IGNORE)
    p_t = torch.exp(-ce)
    loss = (1 - p_t) ** GAMMA * ce
    valid = (y != IGNORE).sum().clamp_min(1)
    return loss.sum() / valid


def _peers() -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        import kornia.losses

        out["kornia"] = kornia.losses
    except Exception as exc:  # pragma: no cover - optional
        out["kornia_error"] = f"{type(exc).__name__}: {exc}"
    try:
        import monai.losses

        out["monai"] = monai.losses
    except Exception as exc:  # pragma: no cover - optional
        out["monai_error"] = f"{type(exc).__name__}: {exc}"
    try:
        import segmentation_models_pytorch.losses as smp_losses

        out["smp"] = smp_losses
    except Exception as exc:
        out["smp_error"] = f"{type(exc).__name__}: {exc}"
    return out


# --------------------------------------------------------------------------- measurement


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _step(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, backward: bool) -> None:
    x.grad = None
    out = fn(x)
    if backward:
        out.backward()


def _time(fn, x, device, repeats: int, warmup: int, backward: bool) -> list[float]:
    """Per-call times in ms: ``repeats`` samples, each the mean of as many calls as last >= 2 ms
    (one call for the large cases; a sub-millisecond call timed alone is mostly timer and noise),
    after ``warmup`` calls and at least 20 ms of them (the method timed before leaves allocator and
    thread-pool state that a few sub-millisecond calls do not wash out)."""
    t0 = time.perf_counter()
    for i in range(10**6):
        if i >= warmup and time.perf_counter() - t0 >= 0.02:
            break
        _step(fn, x, backward)
    _sync(device)
    t0 = time.perf_counter()
    _step(fn, x, backward)
    _sync(device)
    inner = max(1, min(100, int(2e-3 / max(time.perf_counter() - t0, 1e-9))))
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(inner):
            _step(fn, x, backward)
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3 / inner)
    x.grad = None
    return times


def _peak_cpu(fn, x, backward: bool) -> float:
    from torch.profiler import ProfilerActivity, profile

    from focalkit.kernels import cpu as fkcpu

    fkcpu._pool.clear()
    x.grad = None
    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        _step(fn, x, backward)
    # every alloc (+bytes) / free (-bytes) of PyTorch's CPU allocator, with its timestamp
    events = [
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]"
    ]
    events.sort()
    run = peak = 0
    for _, delta in events:
        run += delta
        peak = max(peak, run)
    x.grad = None
    return peak / 2**20


def _peak_cuda(fn, x, backward: bool) -> float:
    x.grad = None
    gc.collect()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    _step(fn, x, backward)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    x.grad = None
    return peak / 2**20


# --------------------------------------------------------------------------- cases


def _cases(quick: bool) -> dict[str, dict[str, Any]]:
    if quick:
        return {
            "detection dense": dict(kind="sigmoid", shape=(2, 500, 80)),
            "detection labels": dict(kind="sigmoid_labels", shape=(2 * 500, 80)),
            "segmentation": dict(kind="softmax", shape=(2, 19, 32, 64)),
            "classification": dict(kind="softmax", shape=(64, 1000)),
            "mixup 64x1000": dict(kind="softmax_soft", shape=(64, 1000)),
            "mixup 2x19x32x64": dict(kind="softmax_soft", shape=(2, 19, 32, 64)),
        }
    return {
        "detection dense": dict(kind="sigmoid", shape=(4, 30000, 80)),
        "detection labels": dict(kind="sigmoid_labels", shape=(4 * 30000, 80)),
        "segmentation": dict(kind="softmax", shape=(4, 19, 256, 512)),
        "classification": dict(kind="softmax", shape=(256, 1000)),
        "mixup 256x1000": dict(kind="softmax_soft", shape=(256, 1000)),
        "mixup 4x19x256x512": dict(kind="softmax_soft", shape=(4, 19, 256, 512)),
    }


def _backend_methods(device: torch.device) -> list[str]:
    names = [n for n in fk.available_backends() if n != "triton" or device.type == "cuda"]
    return names


def _methods(case: dict[str, Any], x: torch.Tensor, device, peers, compile_peers: bool,
             cpu_kernels: dict[str, Any] | None = None):
    kind = case["kind"]
    extra_libs = cpu_kernels if device.type == "cpu" else {}
    g = torch.Generator(device="cpu").manual_seed(0)
    m: dict[str, tuple[Callable, str]] = {}
    if kind in ("sigmoid", "sigmoid_labels"):
        if kind == "sigmoid":
            t = (torch.rand(x.shape, generator=g) < 0.01).to(device=device, dtype=x.dtype)
            fk_t = t
        else:
            n, c = x.shape
            y = torch.full((n,), c, dtype=torch.long)  # background
            pos = torch.rand(n, generator=g) < 0.02
            y[pos] = torch.randint(0, c, (int(pos.sum()),), generator=g)
            y[torch.rand(n, generator=g) < 0.01] = -1  # ignored anchors
            y = y.to(device)
            fk_t = y
            # peers get the dense one-hot (built outside the timed region, ignored anchors as 0)
            t = F.one_hot(y.clamp(0, c), c + 1)[:, :c].to(x.dtype)
        for b in _backend_methods(device):
            m[f"focalkit {b}"] = (
                (lambda x, b=b: _with_backend(b, fk.sigmoid_focal_loss, x, fk_t, alpha=ALPHA,
                                               gamma=GAMMA, ignore_index=-1 if kind == "sigmoid_labels" else None)),
                "",
            )  # fmt: skip
        if "fused" in fk.available_backends():
            m["focalkit fused, validate_args=False"] = (
                (lambda x: _with_backend("fused", fk.sigmoid_focal_loss, x, fk_t, alpha=ALPHA, gamma=GAMMA,
                                         ignore_index=-1 if kind == "sigmoid_labels" else None,
                                         validate_args=False)),
                "no target-value checks",
            )  # fmt: skip
        for kname, lib in (extra_libs or {}).items():
            m[f"focalkit fused [{kname}]"] = (
                (lambda x, lib=lib: _with_cpu_lib(lib, fk.sigmoid_focal_loss, x, fk_t, alpha=ALPHA, gamma=GAMMA,
                                                  ignore_index=-1 if kind == "sigmoid_labels" else None)),
                "C kernel build " + kname,
            )  # fmt: skip
        m["torchvision formula (eager)"] = (lambda x: torchvision_sigmoid_focal(x, t), "re-typed")
        if compile_peers:
            m["torchvision formula (compiled)"] = ("compile", torchvision_sigmoid_focal, t)
        if "kornia" in peers:
            kl = peers["kornia"]
            m["kornia"] = (lambda x: kl.binary_focal_loss_with_logits(x, t, alpha=ALPHA, gamma=GAMMA, reduction="mean"), "")
        if "monai" in peers:
            fl = peers["monai"].FocalLoss(gamma=GAMMA, alpha=ALPHA, reduction="mean")
            m["MONAI"] = (lambda x: fl(x, t), "")
        if "smp" in peers:
            sf = peers["smp"].FocalLoss("multilabel", alpha=ALPHA, gamma=GAMMA)
            m["segmentation_models_pytorch"] = (lambda x: sf(x, t), "")
        m["CE baseline: BCE-with-logits"] = (lambda x: F.binary_cross_entropy_with_logits(x, t), "baseline")
    elif kind == "softmax_soft":
        # mixup: a per-sample convex combination of two one-hot targets (soft at every position)
        n, c = x.shape[0], x.shape[1]
        shp = (n,) + tuple(x.shape[2:])
        lam = torch.rand((n,) + (1,) * (x.dim() - 1), generator=g)
        onehot = lambda: F.one_hot(torch.randint(0, c, shp, generator=g), c).movedim(-1, 1).float()  # noqa: E731
        t = (lam * onehot() + (1 - lam) * onehot()).to(device=device, dtype=x.dtype)
        for b in _backend_methods(device):
            m[f"focalkit {b}"] = (
                (lambda x, b=b: _with_backend(b, fk.softmax_focal_loss, x, t, gamma=GAMMA)), "",
            )  # fmt: skip
        if "fused" in fk.available_backends():
            m["focalkit fused, validate_args=False"] = (
                (lambda x: _with_backend("fused", fk.softmax_focal_loss, x, t, gamma=GAMMA, validate_args=False)),
                "no target-value checks",
            )  # fmt: skip
        for kname, lib in (extra_libs or {}).items():
            m[f"focalkit fused [{kname}]"] = (
                (lambda x, lib=lib: _with_cpu_lib(lib, fk.softmax_focal_loss, x, t, gamma=GAMMA)),
                "C kernel build " + kname,
            )  # fmt: skip
        m["CE baseline: cross_entropy"] = (lambda x: F.cross_entropy(x, t), "baseline")
    else:
        n, c = x.shape[0], x.shape[1]
        shp = (n,) + tuple(x.shape[2:])
        y = torch.randint(0, c, shp, generator=g)
        if len(shp) > 1:
            y[torch.rand(shp, generator=g) < 0.05] = IGNORE
        y = y.to(device)
        for b in _backend_methods(device):
            m[f"focalkit {b}"] = (
                (lambda x, b=b: _with_backend(b, fk.softmax_focal_loss, x, y, gamma=GAMMA, ignore_index=IGNORE)),
                "",
            )  # fmt: skip
        if "fused" in fk.available_backends():
            m["focalkit fused, validate_args=False"] = (
                (lambda x: _with_backend("fused", fk.softmax_focal_loss, x, y, gamma=GAMMA, ignore_index=IGNORE,
                                         validate_args=False)),
                "no target-value checks",
            )  # fmt: skip
        for kname, lib in (extra_libs or {}).items():
            m[f"focalkit fused [{kname}]"] = (
                (lambda x, lib=lib: _with_cpu_lib(lib, fk.softmax_focal_loss, x, y, gamma=GAMMA,
                                                  ignore_index=IGNORE)),
                "C kernel build " + kname,
            )  # fmt: skip
        m["typical formula (eager)"] = (lambda x: typical_softmax_focal(x, y), "CE-based")
        if compile_peers:
            m["typical formula (compiled)"] = ("compile", typical_softmax_focal, y)
        if "kornia" in peers:
            kl = peers["kornia"]
            m["kornia"] = (lambda x: kl.focal_loss(x, y, alpha=None, gamma=GAMMA, reduction="mean", ignore_index=IGNORE),
                           "mean over all positions")  # fmt: skip
        if "monai" in peers:
            fl = peers["monai"].FocalLoss(gamma=GAMMA, use_softmax=True, to_onehot_y=True, reduction="mean",
                                          ignore_index=IGNORE)  # fmt: skip
            y1 = y.unsqueeze(1)
            m["MONAI"] = (lambda x: fl(x, y1), "one-hot inside")
        if "smp" in peers:
            sf = peers["smp"].FocalLoss("multiclass", gamma=GAMMA, ignore_index=IGNORE)
            m["segmentation_models_pytorch"] = (lambda x: sf(x, y), "")
        m["CE baseline: cross_entropy"] = (lambda x: F.cross_entropy(x, y, ignore_index=IGNORE), "baseline")
    m["floor: torch.sigmoid (fwd only)"] = (lambda x: torch.sigmoid(x.detach()), "floor")
    return m


def _with_backend(name: str, fn, *args, **kwargs):
    with fk.use_backend(name):
        return fn(*args, **kwargs)


def _with_cpu_lib(lib: Any, fn, *args, **kwargs):
    """The fused path with another build of the C kernel in place (forward only: backward reads the
    gradient saved by the forward call)."""
    from focalkit.kernels import cpu as fkcpu

    fkcpu._load()
    old = fkcpu._lib
    fkcpu._lib = lib
    try:
        with fk.use_backend("fused"):
            return fn(*args, **kwargs)
    finally:
        fkcpu._lib = old


def run(
    quick: bool = False,
    device: str = "cpu",
    dtypes: list[str] | None = None,
    repeats: int | None = None,
    compile_peers: bool | None = None,
    only: list[str] | None = None,
    threads: int | None = None,
    echo: Callable[[str], None] = print,
    cpu_kernels: list[str] | None = None,
    methods: list[str] | None = None,
) -> dict[str, Any]:
    """Run the benchmark; returns a JSON-ready dict (``machine``, ``command``, ``results``)."""
    dev = torch.device(device)
    if threads:
        torch.set_num_threads(threads)
    dtypes = dtypes or (["float32", "bfloat16"] if dev.type == "cuda" else ["float32"])
    repeats = repeats or (3 if quick else 7)
    warmup = 1 if quick else 2
    compile_peers = (not quick) if compile_peers is None else compile_peers
    peers = _peers()
    extra_libs = load_cpu_kernels(cpu_kernels)
    results: list[Result] = []
    for cname, case in _cases(quick).items():
        if only and not any(o in cname for o in only):
            continue
        for dname in dtypes:
            dtype = getattr(torch, dname)
            g = torch.Generator(device="cpu").manual_seed(1)
            x = (torch.randn(case["shape"], generator=g) * 2).to(device=dev, dtype=dtype).requires_grad_()
            case_methods = _methods(case, x, dev, peers, compile_peers, extra_libs)
            rows: list[Result] = []
            for mname, spec in case_methods.items():
                is_base = isinstance(spec[-1], str) and spec[-1] == "baseline"
                keep = is_base or not methods or any(m in mname for m in methods)
                if not keep:
                    continue
                r = Result(cname, mname, dname, note=spec[-1] if isinstance(spec[-1], str) else "")
                backward = not mname.startswith("floor")
                try:
                    if spec[0] == "compile":
                        fn_c = torch.compile(spec[1])
                        arg = spec[2]
                        t0 = time.perf_counter()
                        _step(lambda x: fn_c(x, arg), x, True)
                        _sync(dev)
                        r.compile_s = time.perf_counter() - t0
                        fn = lambda x, fn_c=fn_c, arg=arg: fn_c(x, arg)  # noqa: E731
                    else:
                        fn = spec[0]
                    r.ms_all = _time(fn, x, dev, repeats, warmup, backward)
                    r.ms = statistics.median(r.ms_all)
                    r.peak_mb = (_peak_cuda if dev.type == "cuda" else _peak_cpu)(fn, x, backward)
                except Exception as exc:  # a peer that cannot run this case: say so
                    r.note = f"failed: {type(exc).__name__}: {str(exc)[:120]}"
                rows.append(r)
                echo(f"  {cname:17s} {dname:8s} {mname:34s} {_fmt(r.ms):>9s} ms  {r.note}")
            base = next((r.ms for r in rows if r.note == "baseline"), None)
            for r in rows:
                if r.ms is not None and base:
                    r.ratio = r.ms / base
            results.extend(rows)
            del x
            gc.collect()
    skipped = {k[:-6]: v for k, v in peers.items() if k.endswith("_error")}
    return dict(
        machine=_machine(dev),
        command=_command(),
        repeats=repeats,
        skipped_peers=skipped,
        results=[asdict(r) for r in results],
    )


def _command() -> str:
    """How this run was started: ``python benchmarks/bench.py ...`` or ``focalkit bench ...``."""
    prog = sys.argv[0] if sys.argv else ""
    if os.path.basename(prog) == "__main__.py":  # python -m PACKAGE
        return " ".join(["python", "-m", os.path.basename(os.path.dirname(prog))] + sys.argv[1:])
    if prog.endswith(".py"):
        return " ".join(["python", os.path.relpath(prog)] + sys.argv[1:])
    return " ".join([os.path.basename(prog) or "python"] + sys.argv[1:])


def _machine(dev: torch.device) -> dict[str, Any]:
    info = dict(
        platform=platform.platform(),
        processor=_cpu_name(),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        load_avg=os.getloadavg() if hasattr(os, "getloadavg") else None,
        device=str(dev),
    )
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _fmt(v: float | None, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def table(data: dict[str, Any]) -> str:
    """Markdown table of a run's results."""
    lines = [
        "| case | dtype | method | fwd+bwd ms (median) | x CE | peak MB above inputs | note |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in data["results"]:
        note = r["note"]
        if r["compile_s"] is not None:
            note = (note + "; " if note else "") + f"compile {r['compile_s']:.1f} s"
        lines.append(
            f"| {r['case']} | {r['dtype']} | {r['method']} | {_fmt(r['ms'])} | "
            f"{_fmt(r['ratio'], 2)} | {_fmt(r['peak_mb'])} | {note} |"
        )
    return "\n".join(lines)


def print_table(data: dict[str, Any]) -> None:
    m = data["machine"]
    print(f"\n{m['processor']}, {m['threads']} threads, torch {m['torch']}, device {m['device']}, "
          f"load average {m['load_avg']}, median of {data['repeats']}\n")
    print(table(data))
    if data["skipped_peers"]:
        for k, v in data["skipped_peers"].items():
            print(f"skipped {k}: {v}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small tensors, few repeats, no torch.compile")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtypes", default=None, help="comma list, e.g. float32,bfloat16")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--compile", dest="compile_peers", action="store_true", default=None,
                    help="also time torch.compile'd formulas (default: on, off with --quick)")
    ap.add_argument("--no-compile", dest="compile_peers", action="store_false")
    ap.add_argument("--only", default=None, help="comma list of case-name substrings")
    ap.add_argument("--methods", default=None,
                    help="comma list of method-name substrings to time (the CE baseline always runs)")
    ap.add_argument("--cpu-kernel", action="append", default=None, metavar="NAME=PATH[@ISA]",
                    help="also time the fused path with this build of the C kernel (repeatable)")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    ap.add_argument("--markdown", default=None, help="write the markdown table to this file")
    ap.add_argument("--small", action="store_true", help="only the small-size section (per-call cost, one thread)")
    ap.add_argument("--no-small", dest="with_small", action="store_false", help="skip the small-size section")
    a = ap.parse_args(argv)
    from focalkit.tools import benchmark_small as small

    small_rows = small.run(quick=a.quick) if (a.small or a.with_small) and a.device == "cpu" else []
    if a.small:
        print(small.table(small_rows))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"small": small_rows}, f, indent=1)
        return 0
    data = run(
        quick=a.quick, device=a.device, dtypes=a.dtypes.split(",") if a.dtypes else None,
        repeats=a.repeats, compile_peers=a.compile_peers,
        only=a.only.split(",") if a.only else None, threads=a.threads, cpu_kernels=a.cpu_kernel,
        methods=a.methods.split(",") if a.methods else None,
    )  # fmt: skip
    data["small"] = small_rows
    print_table(data)
    if small_rows:
        print("\nSmall sizes (per call, one thread, interleaved with PyTorch's loss):\n" + small.table(small_rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(data, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(table(data) + "\n" + ("\n" + small.table(small_rows) + "\n" if small_rows else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
