"""GPU verification kit: one command that checks and times focalkit's Triton kernels on a CUDA device.

On a CUDA machine (``make gpu-check`` or ``python benchmarks/gpu_check.py``) it:

1. runs the Triton kernel tests on the device (``pytest tests/kernels``; conftest.py leaves
   ``TRITON_INTERPRET`` unset when CUDA is present, so the kernels compile for the GPU);
2. runs the first-call check of every kernel variant (:mod:`focalkit.kernels._guard`: op x dtype x
   target form against the eager closed form) and records the verdicts;
3. runs ``benchmarks/bench.py`` in float32, bfloat16 and float16: focalkit's paths against
   PyTorch's losses, torchvision's formula (eager and ``torch.compile``d), kornia and MONAI where
   installed;
4. measures the bandwidth floor: for each case, the bytes the fused forward+backward must move
   (read the logits and targets, write the gradient) over its measured time, against the device's
   copy bandwidth (a ``clone`` of a large tensor);

and writes ``gpu-check.json`` and ``gpu-check.md`` (the Markdown table for the README) to ``--out``.

``--dry-run`` runs the same pipeline on the CPU with Triton's interpreter and tiny tensors, to show
that the kit itself works (CI runs it: ``tests/kernels/test_gpu_check.py``); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _load_bench() -> Any:
    sys.path.insert(0, str(ROOT / "src"))
    from focalkit.tools import benchmark

    return benchmark


def run_tests(dry_run: bool) -> dict[str, Any]:
    """pytest of the kernel tests on the device; returns the exit code and the summary line."""
    if dry_run:
        args = ["tests/kernels/test_guard.py", "-q", "-p", "no:cacheprovider"]
    else:
        args = ["tests/kernels", "-q", "-p", "no:cacheprovider"]
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=ROOT, capture_output=True, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    return {"command": "pytest " + " ".join(args), "exit_code": r.returncode,
            "summary": lines[-1] if lines else r.stderr[-500:], "seconds": round(time.perf_counter() - t0, 1)}


def check_variants(device: str, dtypes: list[str]) -> dict[str, str]:
    """Call every kernel variant once through the first-call check; return the verdicts."""
    import torch

    import focalkit as fk
    from focalkit.kernels import _guard

    os.environ["FOCALKIT_TRITON_CHECK"] = "1"
    _guard.reset()
    g = torch.Generator().manual_seed(0)
    with fk.use_backend("triton"):
        for dname in dtypes:
            dt = getattr(torch, dname)
            x = torch.randn(4, 7, 33, generator=g).to(device=device, dtype=dt)
            dense = (torch.rand(4, 7, 33, generator=g) > 0.8).float().to(device)
            idx = torch.randint(0, 8, (4, 33), generator=g).to(device)
            cls = torch.randint(0, 7, (4, 33), generator=g).to(device)
            for fn, t in ((fk.sigmoid_focal_loss, dense), (fk.sigmoid_focal_loss, idx), (fk.softmax_focal_loss, cls)):
                xx = x.clone().requires_grad_()
                fn(xx, t).backward()
    return fk.kernel_status()["triton_checks"]


def bandwidth(data: dict[str, Any], cases: dict[str, dict[str, Any]], device: str) -> dict[str, Any]:
    """Copy bandwidth of the device and, per focalkit row, the bytes moved over the measured time.

    Bytes moved by a fused forward+backward: read the logits, write the gradient (both in the
    logits' dtype; float16 gradients are kept in float32), read the targets (float32 of the logits'
    shape, or int64 class indices with the class dimension removed).
    """
    import torch

    n = (1 << 28) if device == "cuda" else (1 << 20)
    x = torch.empty(n, dtype=torch.float32, device=device)
    for _ in range(3):
        x.clone()
    if device == "cuda":
        torch.cuda.synchronize()
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        x.clone()
    if device == "cuda":
        torch.cuda.synchronize()
    copy_gbs = 2 * x.numel() * 4 * reps / (time.perf_counter() - t0) / 1e9
    rows = []
    for r in data.get("results", []):
        case = cases.get(r.get("case", ""))
        if case is None or not str(r.get("method", "")).startswith("focalkit") or not r.get("ms"):
            continue
        shape = case["shape"]
        elems = 1
        for s in shape:
            elems *= s
        item = {"float32": 4, "bfloat16": 2, "float16": 2}.get(r.get("dtype"), 4)
        grad_item = 4 if r.get("dtype") == "float16" else item
        labels = case["kind"] != "sigmoid"  # class indices, class dimension removed
        classes = shape[1] if len(shape) > 1 else 1
        target_bytes = 8 * elems // classes if labels else 4 * elems
        moved = elems * (item + grad_item) + target_bytes
        gbs = moved / (r["ms"] / 1e3) / 1e9
        rows.append({"case": r["case"], "dtype": r.get("dtype"), "method": r["method"], "GB/s": round(gbs, 1),
                     "of_copy": round(gbs / copy_gbs, 3)})
    return {"copy_GB_per_s": round(copy_gbs, 1), "rows": rows}


def markdown(report: dict[str, Any], bench_table: str) -> str:
    lines = [f"GPU check on {report['device_name']} ({report['date']}, torch {report['torch']}, triton {report['triton']})", ""]
    t = report["tests"]
    lines.append(f"- kernel tests on the device: `{t['command']}` -> exit {t['exit_code']}: {t['summary']}")
    bad = {k: v for k, v in report["variant_checks"].items() if v != "ok"}
    lines.append(f"- first-call checks: {len(report['variant_checks'])} variants, "
                 + ("all ok" if not bad else f"{len(bad)} failed: " + "; ".join(f"{k}: {v}" for k, v in bad.items())))
    bw = report["bandwidth"]
    lines.append(f"- copy bandwidth {bw['copy_GB_per_s']} GB/s; focalkit rows at "
                 + ", ".join(f"{r['case']} {r['dtype']} {r['of_copy']:.0%}" for r in bw["rows"][:9]))
    lines += ["", bench_table]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="gpu-check", help="folder for gpu-check.json and gpu-check.md")
    ap.add_argument("--dry-run", action="store_true", help="CPU + Triton interpreter, tiny tensors (CI)")
    ap.add_argument("--dtypes", default="float32,bfloat16,float16")
    a = ap.parse_args(argv)
    if a.dry_run:
        os.environ.setdefault("TRITON_INTERPRET", "1")
    import torch

    device = "cpu" if a.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; use --dry-run to check the kit on the CPU", file=sys.stderr)
        return 2
    dtypes = ["float32"] if a.dry_run else a.dtypes.split(",")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        import triton

        triton_version = triton.__version__
    except Exception:  # pragma: no cover
        triton_version = "missing"
    report: dict[str, Any] = {
        "dry_run": a.dry_run,
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "triton": triton_version,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else "CPU (Triton interpreter, dry run)",
    }
    report["tests"] = run_tests(a.dry_run)
    report["variant_checks"] = check_variants(device, dtypes)
    bench = _load_bench()
    data = bench.run(quick=a.dry_run, device=device, dtypes=dtypes, repeats=1 if a.dry_run else None,
                     compile_peers=not a.dry_run, only=["classification"] if a.dry_run else None, echo=lambda s: None)
    report["bench"] = data
    report["bandwidth"] = bandwidth(data, bench._cases(a.dry_run), device)
    (out / "gpu-check.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "gpu-check.md").write_text(markdown(report, bench.table(data)))
    print((out / "gpu-check.md").read_text())
    ok = report["tests"]["exit_code"] == 0 and all(v == "ok" for v in report["variant_checks"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
