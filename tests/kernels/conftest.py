"""Fixtures of the kernel tests: ``kernel`` runs a test once per compiled backend available here."""

from __future__ import annotations

import pytest

import focalkit as fk

#: The compiled backends: the C kernel on CPU ("fused") and Triton (on CPU under the interpreter).
KERNEL_BACKENDS = [b for b in ("fused", "triton") if b in fk.available_backends()]


@pytest.fixture(params=KERNEL_BACKENDS)
def kernel(request, monkeypatch):
    """The loss functions with a kernel backend forced; every loss call must reach that kernel."""
    from focalkit import backends

    name, real, reached = request.param, backends.resolve, []

    def recording_resolve(info):
        chosen = real(info)
        reached.append("reference" if chosen is None else chosen.name)
        return chosen

    monkeypatch.setattr(backends, "resolve", recording_resolve)
    with fk.use_backend(name):
        yield name
    assert reached and set(reached) == {name}, f"calls went to {sorted(set(reached))}, not only {name}"
