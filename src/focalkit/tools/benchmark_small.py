"""Small-size section of the benchmark: per-call cost of the loss where the loss tensor is small.

Most classifiers train with small loss tensors, where a loss costs its Python and dispatch overhead,
not its arithmetic. Each row times forward+backward of focalkit's loss (default arguments, so with
``validate_args=True``) and of PyTorch's loss of the same form on the same tensors, one thread,
interleaved: each repeat runs ``calls`` focalkit calls then ``calls`` PyTorch calls, and the ratio is
the median over repeats of the per-repeat ratio, which cancels most of the noise of a shared machine.

    python benchmarks/bench.py --small              # this section only (or: focalkit bench --small)
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F

import focalkit as fk

CASES = [
    ("softmax 8x5", "softmax", (8, 5)),
    ("softmax 32x10", "softmax", (32, 10)),
    ("softmax 256x10", "softmax", (256, 10)),
    ("softmax 256x1000", "softmax", (256, 1000)),
    ("sigmoid 32x20 (multi-label)", "sigmoid", (32, 20)),
    ("softmax 32x10, nn.Module", "softmax_module", (32, 10)),
]


def _pair(kind: str, shape: tuple[int, int], dtype: torch.dtype) -> tuple[Callable[[], None], Callable[[], None]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g).to(dtype).requires_grad_()
    if kind == "softmax":
        y = torch.randint(0, shape[1], (shape[0],), generator=g)

        def ours() -> None:
            fk.softmax_focal_loss(x, y).backward()

        def theirs() -> None:
            F.cross_entropy(x, y).backward()
    elif kind == "softmax_module":  # the module forms: fk.SoftmaxFocalLoss against nn.CrossEntropyLoss
        y = torch.randint(0, shape[1], (shape[0],), generator=g)
        fl, ce = fk.SoftmaxFocalLoss(), torch.nn.CrossEntropyLoss()

        def ours() -> None:
            fl(x, y).backward()

        def theirs() -> None:
            ce(x, y).backward()
    else:
        t = (torch.rand(shape, generator=g) < 0.1).to(dtype)

        def ours() -> None:
            fk.sigmoid_focal_loss(x, t).backward()

        def theirs() -> None:
            F.binary_cross_entropy_with_logits(x, t).backward()
    return ours, theirs


def _time(fn: Callable[[], None], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e6


def run(dtypes: list[str] | None = None, repeats: int = 15, quick: bool = False) -> list[dict[str, Any]]:
    """Rows of ``case, dtype, focalkit_us, pytorch_us, ratio`` (medians over interleaved repeats)."""
    dtypes = dtypes or ["float32", "bfloat16"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        for name, kind, shape in CASES:
            for dname in dtypes:
                ours, theirs = _pair(kind, shape, getattr(torch, dname))
                calls = 20 if quick else max(20, int(20000 / (shape[0] * shape[1]) ** 0.5))
                for _ in range(3):
                    ours(), theirs()
                a, b, r = [], [], []
                for _ in range(3 if quick else repeats):
                    ta, tb = _time(ours, calls), _time(theirs, calls)
                    a.append(ta), b.append(tb), r.append(ta / tb)
                rows.append({"case": name, "dtype": dname, "focalkit_us": round(statistics.median(a), 1),
                             "pytorch_us": round(statistics.median(b), 1), "ratio": round(statistics.median(r), 2)})
    finally:
        torch.set_num_threads(threads)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| case | dtype | focalkit fwd+bwd | PyTorch's loss | focalkit / PyTorch |", "|---|---|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['case']} | {r['dtype']} | {r['focalkit_us']} us | {r['pytorch_us']} us | {r['ratio']:.2f}x |")
    return "\n".join(out)
