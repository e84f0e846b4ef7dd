"""The layout's rules, checked on the source: core apart from tools, no import cycles, small files.

* The core (``focalkit/*.py``, ``backends/``, ``kernels/``, ``testing/``) imports only the standard
  library, torch, numpy (triton in ``kernels/_triton_kernels.py`` alone) and other core modules: never a
  tool (``focalkit.tools``) nor the boosting integration (``focalkit.gbdt``).
* No import cycles among focalkit's modules, counting imports inside functions and
  ``importlib.import_module("...")`` / ``__import__("...")`` calls with a literal name.
* No source file in ``src/`` over 600 lines.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "focalkit"
CORE_PACKAGES = ("focalkit.backends", "focalkit.kernels", "focalkit.testing")
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_core(mod: str) -> bool:
    if mod == "focalkit" or any(mod == p or mod.startswith(p + ".") for p in CORE_PACKAGES):
        return True
    # a top-level module (not a subpackage), the CLI entry point excepted
    return mod.count(".") == 1 and mod in MODULES and mod != "focalkit.__main__" and not (
        PKG / mod.split(".")[1]
    ).is_dir()


def _resolve(target: str) -> str:
    """The focalkit module a name refers to: the longest prefix that is a module."""
    parts = target.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts)


def _imports(mod: str) -> list[tuple[str, int]]:
    """(imported name, line) for every import in the module, nested and dynamic ones included."""
    path = MODULES[mod]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                out.append((full if full in MODULES else base, node.lineno))
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    out.append((arg.value, node.lineno))
    return out


def test_the_layout_is_what_the_docs_say():
    assert {"focalkit.functional", "focalkit.modules", "focalkit._autograd", "focalkit.backends.registry",
            "focalkit.kernels.ops", "focalkit.testing.reference", "focalkit.tools.cli"} <= set(MODULES)
    assert _is_core("focalkit.functional") and _is_core("focalkit.kernels.cpu")
    assert not _is_core("focalkit.tools.tune.api") and not _is_core("focalkit.__main__")
    assert not _is_core("focalkit.gbdt") and not _is_core("focalkit.gbdt.derivatives")


def test_core_imports_only_stdlib_torch_numpy_and_core():
    allowed = set(sys.stdlib_module_names) | {"torch", "numpy"}
    offenders = []
    for mod in MODULES:
        if not _is_core(mod):
            continue
        for name, line in _imports(mod):
            root = name.split(".")[0]
            if root == "focalkit":
                target = _resolve(name)
                if not _is_core(target):
                    offenders.append(f"{mod}:{line} imports the tool {name}")
            elif root == "triton":
                if mod != "focalkit.kernels._triton_kernels":
                    offenders.append(f"{mod}:{line} imports triton (only kernels/_triton_kernels.py may)")
            elif root not in allowed:
                offenders.append(f"{mod}:{line} imports {name}")
    assert not offenders, "\n".join(offenders)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_dynamic_imports_included():
    graph = {
        mod: {_resolve(n) for n, _ in _imports(mod) if n.split(".")[0] == "focalkit"} - {""}
        for mod in MODULES
    }
    assert _cycles(graph) == []
    # the checker itself finds a cycle when there is one
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_source_file_over_600_lines():
    long = {str(p.relative_to(SRC)): n for p in PKG.rglob("*") if p.suffix in (".py", ".c")
            for n in [len(p.read_text(encoding="utf-8").splitlines())] if n > MAX_LINES}
    assert not long, long


@pytest.mark.parametrize("call", ["sigmoid", "softmax"])
def test_import_and_first_loss_call_load_no_tool_no_extra_and_no_gpu_stack(call):
    """Cold start on a CPU machine: no tool, no optional library, no triton/sympy/torch._dynamo."""
    import os

    code = (
        "import sys, torch, focalkit as fk\n"
        f"fk.{call}_focal_loss(torch.randn(4, 3, requires_grad=True), torch.tensor([0, 1, 2, 0])).backward()\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('focalkit.tools', 'focalkit.gbdt')) or "
        "m.split('.')[0] in ('typer', 'rich', 'optuna', 'matplotlib', 'sklearn', 'triton', 'sympy', 'lightgbm', "
        "'xgboost', 'catboost') or m == 'torch._dynamo')\n"
        "print(','.join(bad))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    if "cuda" not in r.stdout:  # a CUDA machine may import triton for the GPU path; this one has none
        assert r.stdout.strip() == ""
