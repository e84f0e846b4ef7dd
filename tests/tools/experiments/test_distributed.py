"""DDP with focalkit's detection normalizer equals one process on the global batch.

Two CPU processes (gloo, ``torch.multiprocessing.spawn``). Each rank computes the summed focal
loss of its half of a global batch divided by ``fk.num_positives`` (all-reduced mean of the
positive count), and DistributedDataParallel averages the gradients; the update must equal a
single process's on the whole batch normalized by the total number of positives. The two halves
hold different numbers of positives, so a per-rank count (detectron2's normalizer) gives a
different update, which the test also checks (it would otherwise pass for any normalizer).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import focalkit as fk

pytestmark = pytest.mark.slow  # spawns 2 processes (a few seconds each to import torch)

WORLD = 2
C = 3  # foreground classes; value C = background


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 2, 8, 8, generator=g)
    y = torch.full((4, 8, 8), C, dtype=torch.int64)
    y[0, 1, 1] = 0  # rank 0 (images 0, 2): 2 positives
    y[2, 5, 6] = 2
    y[1, 2, 3] = 1  # rank 1 (images 1, 3): 5 positives
    y[1, 4, 4] = 0
    y[3, 0, 7] = 2
    y[3, 6, 2] = 1
    y[3, 7, 7] = 0
    y[1, 0, 0] = -1  # an ignored anchor
    return x, y


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, C, 1))
    torch.nn.init.constant_(m[2].bias, fk.prior_bias(0.01))
    return m


def _step(model, x, y, reduce_across_ranks: bool = True) -> list[torch.Tensor]:
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    logits = model(x)
    norm = fk.num_positives(y, C, ignore_index=-1, reduce_across_ranks=reduce_across_ranks)
    loss = fk.sigmoid_focal_loss(logits, y, alpha=0.25, gamma=2.0, reduction="sum", normalizer=norm,
                                 ignore_index=-1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    module = model.module if hasattr(model, "module") else model
    return [p.detach().clone() for p in module.parameters()]


def _init(rank: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    store = os.path.join(out_dir, "store")  # a file rendezvous: no port to race for
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)


def _worker(rank: int, out_dir: str) -> None:
    """One rank: a DDP step (all-reduced and per-rank normalizers), then a short training run."""
    _init(rank, out_dir)
    try:
        x, y = _batch()
        xl, yl = x[rank::WORLD], y[rank::WORLD]  # this rank's share of the global batch
        count = fk.num_positives(yl, C, ignore_index=-1)
        results = {"count": count}
        ddp = torch.nn.parallel.DistributedDataParallel(_model())
        results["reduced"] = _step(ddp, xl, yl, reduce_across_ranks=True)
        ddp = torch.nn.parallel.DistributedDataParallel(_model())
        results["per_rank"] = _step(ddp, xl, yl, reduce_across_ranks=False)
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
        try:
            import sklearn  # noqa: F401  (fit_and_score needs the experiments extra)
        except ImportError:
            pass
        else:
            r = _fit(os.path.join(out_dir, "ddp.pt"))
            if rank == 0:
                torch.save({"loss_curve": r["loss_curve"], "ap": r["ap"]}, os.path.join(out_dir, "ddp_result.pt"))
        dist.barrier()  # no rank tears gloo down while another still talks to it
    finally:
        dist.destroy_process_group()


def _fit(save: str) -> dict:
    from focalkit.tools.experiments.data import make_dense
    from focalkit.tools.experiments.train import LossSpec, TrainConfig, fit_and_score

    ds = make_dense(24, size=24, objects_per_image=2.0, seed=3)
    tr, te = np.arange(16), np.arange(16, 24)
    return fit_and_score(ds, tr, te, LossSpec("focal", gamma=2.0), seed=0, epochs=2, save=save,
                         config=TrainConfig(epochs=2, batch_size=8, lr=1e-2))


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Spawns the 2 gloo ranks once for both tests; returns the folder with their results."""
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    d = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(str(d),), nprocs=WORLD, join=True)
    return str(d)


def test_ddp_step_equals_single_process_step(ddp_run):
    x, y = _batch()
    single = _step(_model(), x, y)
    total = fk.num_positives(y, C, ignore_index=-1)
    assert total.item() == 7.0
    ranks = [torch.load(os.path.join(ddp_run, f"rank{r}.pt"), weights_only=True) for r in range(WORLD)]
    for r in ranks:
        # the all-reduced mean count: (2 + 5) / 2 on both ranks
        assert r["count"].item() == pytest.approx(3.5)
        for p_ddp, p_one in zip(r["reduced"], single):
            torch.testing.assert_close(p_ddp, p_one, rtol=1e-5, atol=1e-6)
    # a per-rank normalizer (2 on one rank, 5 on the other) gives a different update
    diff = max((a - b).abs().max().item() for a, b in zip(ranks[0]["per_rank"], single))
    assert diff > 1e-3
    # both ranks hold the same parameters after the DDP step
    for a, b in zip(ranks[0]["reduced"], ranks[1]["reduced"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ddp_training_run_equals_single_process_run(ddp_run, tmp_path):
    """fit_and_score's DDP path (dense task, 2 ranks) trains the same weights as one process."""
    pytest.importorskip("sklearn")
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks
    try:
        one = _fit(str(tmp_path / "one.pt"))
    finally:
        torch.set_num_threads(torch_threads)
    a = torch.load(tmp_path / "one.pt", weights_only=True)["state_dict"]
    b = torch.load(os.path.join(ddp_run, "ddp.pt"), weights_only=True)["state_dict"]
    ddp = torch.load(os.path.join(ddp_run, "ddp_result.pt"), weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=5e-5)
    np.testing.assert_allclose(ddp["loss_curve"], one["loss_curve"], rtol=1e-4)
    assert ddp["ap"] == pytest.approx(one["ap"], abs=1e-4)
