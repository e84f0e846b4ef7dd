"""``focalkit bench``: runs ``benchmarks/bench.py`` of a source checkout (forward+backward timings).

The benchmark script lives beside the package in the repository (``benchmarks/bench.py``) rather
than inside it; this command finds it relative to the package (editable/source installs) or via
``--script``, and passes its options through.

Example:
    focalkit bench --quick --json bench.json
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Optional

import typer


def _find_script(script: Optional[Path]) -> Path:
    if script is not None:
        return script
    root = Path(__file__).resolve().parents[3]  # src/focalkit/tools/bench.py -> the checkout
    for cand in (root / "benchmarks" / "bench.py", Path.cwd() / "benchmarks" / "bench.py"):
        if cand.is_file():
            return cand
    raise typer.BadParameter(
        "benchmarks/bench.py not found: run from a source checkout of focalkit or pass --script",
        param_hint="--script",
    )


def bench(
    quick: bool = typer.Option(False, help="Small tensors, few repeats, no torch.compile."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda if available)."),
    dtypes: Optional[str] = typer.Option(None, help="Comma list, e.g. float32,bfloat16."),
    repeats: Optional[int] = typer.Option(None, min=1, help="Timed repeats per method."),
    only: Optional[str] = typer.Option(None, help="Comma list of case-name substrings."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON."),
    script: Optional[Path] = typer.Option(None, help="Path to benchmarks/bench.py."),
) -> None:
    """Time focal loss forward+backward: focalkit's paths against torchvision's formula, kornia,
    MONAI and PyTorch's cross-entropy."""
    path = _find_script(script)
    spec = importlib.util.spec_from_file_location("focalkit_bench_script", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    argv: list[str] = []
    if quick:
        argv.append("--quick")
    for flag, val in (("--device", device), ("--dtypes", dtypes), ("--only", only)):
        if val:
            argv += [flag, val]
    if repeats:
        argv += ["--repeats", str(repeats)]
    if json_path:
        argv += ["--json", os.fspath(json_path)]
    raise typer.Exit(mod.main(argv))
