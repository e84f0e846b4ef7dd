"""Shared test configuration.

Triton kernels run on the CPU through Triton's interpreter, which must be switched on before any
kernel is defined, so it is set here, before test modules import focalkit's kernels.

The ``backend`` fixture runs a test once per backend available here. A run under ``fused`` or
``triton`` in which no call reached that backend (float64 input, arguments the kernels do not take,
or a test of argument checks only: every call went to the eager closed form) is reported as
skipped, so that the counts do not claim kernel coverage that the eager run already gave.
"""

import os

try:  # pragma: no cover - depends on the machine
    import torch

    _has_cuda = torch.cuda.is_available()
except Exception:  # pragma: no cover
    _has_cuda = False

if not _has_cuda:
    os.environ.setdefault("TRITON_INTERPRET", "1")
# The Triton first-call check (focalkit.kernels._guard) keeps its verdicts per process: one verdict
# in a test would route every later Triton test of the same worker to eager. The tests check the
# kernels against the reference themselves; tests/kernels/test_guard.py switches the check on.
os.environ.setdefault("FOCALKIT_TRITON_CHECK", "0")

import pytest  # noqa: E402

import focalkit as fk  # noqa: E402
from focalkit import backends as _backends  # noqa: E402

BACKENDS = fk.available_backends()
_KERNEL_BACKENDS = ("fused", "triton")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Runs a test once per backend available here (reference, eager, and compiled ones)."""
    name = request.param
    reached: list[str] = []
    if name in _KERNEL_BACKENDS:
        real = _backends.resolve

        def recording_resolve(info):
            chosen = real(info)
            reached.append("reference" if chosen is None else chosen.name)
            return chosen

        monkeypatch.setattr(_backends, "resolve", recording_resolve)
    request.node._fk_backend = (name, reached)
    with fk.use_backend(name):
        yield name


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    info = getattr(item, "_fk_backend", None)
    if info is None or report.when != "call" or not report.passed:
        return
    name, reached = info
    if name in _KERNEL_BACKENDS and name not in reached:
        why = (
            f"no call reached the {name} kernels (every call went to {sorted(set(reached))}: float64, "
            "arguments the kernels do not take, or argument checks only); covered by the eager run"
            if reached
            else f"no loss call reached the dispatcher (argument checks only); covered by the eager run"
        )
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {why}")
