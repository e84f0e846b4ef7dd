"""The adapter for PyTorch internals (focalkit._torch_compat): a PyTorch upgrade breaks here first."""

from __future__ import annotations

import torch

from focalkit._torch_compat import mark_trace_constant, storage_use_count


def test_storage_use_count_counts_owners_of_the_storage():
    t = torch.zeros(8)
    alone = storage_use_count(t)
    assert alone == 2  # t itself and the temporary storage object of the call
    v = t[2:]  # a view: its own tensor, the same storage
    assert storage_use_count(t) == alone + 1
    del v
    assert storage_use_count(t) == alone


def test_mark_trace_constant_is_read_by_torch_compile():
    calls = []

    @mark_trace_constant
    def setting() -> float:
        calls.append(1)
        return 3.0

    @torch.compile(backend="eager", fullgraph=True)
    def f(x):
        return x * setting()

    x = torch.ones(2)
    assert torch.equal(f(x), x * 3)
    f(x)
    assert getattr(setting, "_dynamo_marked_constant", False)
    assert len(calls) == 1  # called once, at trace time, and baked into the graph
