"""``focalkit bench``: forward+backward timings of focal loss against its peers.

Runs :mod:`focalkit.tools.benchmark` (part of the package: it works from any installation, the
same code as ``python benchmarks/bench.py`` in a source checkout) and passes the options through;
``--script PATH`` runs another copy of the benchmark script instead (e.g. a modified one).

Example:
    focalkit bench --quick --json bench.json
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer


def _load_script(script: Path) -> Callable[[list[str]], int]:
    """``main`` of a benchmark script file, loaded as a module registered in ``sys.modules``
    (``@dataclass`` and pickling look the module up there while it executes). A path that is not a
    Python script with ``main(argv)`` is a ValueError with a one-line message."""
    if not script.exists():
        raise ValueError(f"{script}: no such file")
    if not script.is_file():
        raise ValueError(f"{script}: not a file")
    name = "focalkit_bench_script"
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise ValueError(f"{script}: not a Python script")
    mod: Any = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        sys.modules.pop(name, None)
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{script}: cannot load it ({type(e).__name__}: {why})") from None
    if not callable(getattr(mod, "main", None)):
        raise ValueError(f"{script}: has no main(argv) function")
    return mod.main


def bench(
    quick: bool = typer.Option(False, help="Small tensors, few repeats, no torch.compile."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda if available)."),
    dtypes: Optional[str] = typer.Option(None, help="Comma list, e.g. float32,bfloat16."),
    repeats: Optional[int] = typer.Option(None, min=1, help="Timed repeats per method."),
    only: Optional[str] = typer.Option(None, help="Comma list of case-name substrings."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON."),
    small: bool = typer.Option(False, "--small", help="Only the small-size section: per-call cost against PyTorch's losses, one thread."),
    script: Optional[Path] = typer.Option(None, help="Run this benchmark script instead of the installed one."),
) -> None:
    """Time focal loss forward+backward: focalkit's paths against torchvision's formula, kornia,
    MONAI and PyTorch's cross-entropy."""
    if json_path is not None:  # check where the results go before timing anything
        if json_path.is_dir():
            raise typer.BadParameter(f"{json_path}: is a directory, expected a file name", param_hint="--json")
        if not json_path.parent.is_dir():
            raise typer.BadParameter(f"{json_path.parent}: no such directory", param_hint="--json")
    if script is not None:
        try:
            main = _load_script(script)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--script") from None
    else:
        from focalkit.tools.benchmark import main
    argv: list[str] = []
    if quick:
        argv.append("--quick")
    if small:
        argv.append("--small")
    for flag, val in (("--device", device), ("--dtypes", dtypes), ("--only", only)):
        if val:
            argv += [flag, val]
    if repeats:
        argv += ["--repeats", str(repeats)]
    if json_path:
        argv += ["--json", os.fspath(json_path)]
    raise typer.Exit(main(argv))
