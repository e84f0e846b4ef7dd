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
import sys
from pathlib import Path
from types import ModuleType
from typing import Optional

import typer


def _find_script(script: Optional[Path]) -> Path:
    if script is not None:
        if not script.exists():
            raise typer.BadParameter(f"{script}: no such file", param_hint="--script")
        if not script.is_file():
            raise typer.BadParameter(f"{script}: not a file", param_hint="--script")
        return script
    root = Path(__file__).resolve().parents[3]  # src/focalkit/tools/bench.py -> the checkout
    for cand in (root / "benchmarks" / "bench.py", Path.cwd() / "benchmarks" / "bench.py"):
        if cand.is_file():
            return cand
    raise typer.BadParameter(
        "benchmarks/bench.py not found: run from a source checkout of focalkit or pass --script",
        param_hint="--script",
    )


def _load_script(path: Path) -> ModuleType:
    """Import the benchmark script as a module (registered in ``sys.modules``, which ``@dataclass``
    needs); a file that is not a Python script with ``main(argv)`` is a one-line usage error."""
    name = "focalkit_bench_script"
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=None)
    if spec is None or spec.loader is None:
        raise typer.BadParameter(f"{path}: not a Python script", param_hint="--script")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except (SyntaxError, ValueError, ImportError, OSError, UnicodeDecodeError) as e:
        sys.modules.pop(name, None)
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise typer.BadParameter(f"{path}: cannot load it ({type(e).__name__}: {why})", param_hint="--script") from None
    if not callable(getattr(mod, "main", None)):
        raise typer.BadParameter(f"{path}: has no main(argv) function", param_hint="--script")
    return mod


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
    if json_path is not None:  # check where the results go before timing anything
        if json_path.is_dir():
            raise typer.BadParameter(f"{json_path}: is a directory, expected a file name", param_hint="--json")
        if not json_path.parent.is_dir():
            raise typer.BadParameter(f"{json_path.parent}: no such directory", param_hint="--json")
    mod = _load_script(path)
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
