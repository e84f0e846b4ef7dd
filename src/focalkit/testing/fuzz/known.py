"""Known bugs the campaign has found: named, narrow, and re-enabled by themselves once fixed.

Each :class:`KnownIssue` has a minimal ``repro`` that returns True while the bug is present, and a
``matches`` predicate on a failed check (the case, the backend it reached, which check failed). At
the start of a campaign every repro runs: an issue whose repro still fails explains the failures it
matches (they are counted as "known", not as mismatches); an issue whose repro passes is *stale*:
it explains nothing, so its cases count again, and the summary (and tests/core/test_fuzz.py) asks
for its entry to be deleted.

The predicates are as narrow as the bug: a failure they do not match is a new finding.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

import focalkit as fk
from focalkit.testing.fuzz.cases import Case

__all__ = ["KNOWN_ISSUES", "KnownIssue", "active_known_issues", "explain"]


@dataclass(frozen=True)
class KnownIssue:
    """A known bug: its name, the issue that tracks it, a minimal repro and the failures it explains.

    ``repro()`` returns True while the bug is present. ``matches(case, outcome, failure)`` says
    whether a failed check is this bug.
    """

    name: str
    ref: str
    summary: str
    repro: Callable[[], bool]
    matches: Callable[[Case, Any, Any], bool]


KNOWN_ISSUES: list[KnownIssue] = []


def active_known_issues(issues: Sequence[KnownIssue] | None = None) -> tuple[list[KnownIssue], list[KnownIssue]]:
    """(issues whose repro still fails here, stale issues whose repro passes)."""
    active, stale = [], []
    for k in KNOWN_ISSUES if issues is None else issues:
        try:
            present = bool(k.repro())
        except Exception:  # the repro raising is the bug showing, too
            present = True
        (active if present else stale).append(k)
    return active, stale


def explain(case: Case, outcome: Any, failure: Any, known: Sequence[KnownIssue]) -> str | None:
    """The name of the first active known issue that matches a failed check, or None."""
    for k in known:
        if k.matches(case, outcome, failure):
            return k.name
    return None


# ---------------------------------------------------------------------------------------------
# the entries: each repro is the smallest call that shows the bug

def _grad(fn: Callable[[Tensor], Tensor], x: Tensor, scale: float = 1.0) -> Tensor:
    z = x.detach().clone().requires_grad_(True)
    (fn(z) * scale).backward()
    assert z.grad is not None
    return z.grad


def _repro_triton_interpreter_bf16() -> bool:
    if os.environ.get("TRITON_INTERPRET") != "1" or "triton" not in fk.available_backends():
        return False
    x = torch.tensor([[3.516, 4.781]], dtype=torch.bfloat16)
    y = torch.tensor([1])

    def f(z: Tensor) -> Tensor:
        return fk.softmax_focal_loss(z, y, gamma=8.913931295091444, reduction="sum")

    with fk.use_backend("triton"):  # the float32 gradient 2.6793e-6 rounds to 2.6822e-6 in bfloat16
        return not torch.equal(_grad(f, x), _grad(f, x.float()).bfloat16())


KNOWN_ISSUES += [
    KnownIssue(
        name="triton-interpreter-bf16-truncation", ref="Triton 3.9 interpreter, not focalkit",
        summary="under TRITON_INTERPRET=1 a float32 -> bfloat16 store truncates instead of rounding to "
        "nearest (triton/runtime/interpreter.py _convert_float ignores the rounding mode), so the "
        "bfloat16 gradient of the Triton kernels is up to 1 ulp low on the CPU; compiled Triton on CUDA "
        "rounds to nearest",
        repro=_repro_triton_interpreter_bf16,
        matches=lambda c, o, f: o.reached == "triton" and o.device == "cpu" and c.dtype == torch.bfloat16
        and ((f.check == "half-grad" and (f.value or 0) <= 2.5) or (f.check == "grad" and (f.value or 0) <= 0.0118)),
    ),
]
