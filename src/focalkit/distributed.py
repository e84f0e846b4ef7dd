"""Detection-style normalization across processes: the number of positives, averaged over ranks."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["num_positives"]


def num_positives(
    targets: Tensor,
    num_classes: int | None = None,
    *,
    ignore_index: int | None = None,
    reduce_across_ranks: bool = True,
) -> Tensor:
    r"""Count positive targets, as RetinaNet's normalizer, averaged over ranks under DDP.

    * With ``num_classes=C``, ``targets`` are class indices (C = background, see
      :func:`focalkit.sigmoid_focal_loss`): positives are positions with 0 <= target < C and
      target != ignore_index.
    * Without it, ``targets`` are labels of the logits' shape: positives are elements > 0 (and
      != ignore_index).

    When ``torch.distributed`` is initialized (and ``reduce_across_ranks``), the count is
    all-reduced and divided by the world size, as mmdetection's ``reduce_mean`` does. Each rank then
    divides its summed loss by the same number :math:`\bar n = \frac{1}{W}\sum_r n_r`, and since DDP
    averages gradients over the W ranks, the update equals a single process's on the global batch:
    :math:`\frac{1}{W}\sum_r \nabla \frac{L_r}{\bar n} = \nabla \frac{\sum_r L_r}{\sum_r n_r}`.
    (A per-rank count, as in detectron2, gives each rank a different normalizer.)

    Args:
        targets: integer class indices, or 0/1 (or soft) labels.
        num_classes: C for class-index targets; None for label targets.
        ignore_index: target value that is never a positive.
        reduce_across_ranks: all-reduce when a process group is initialized.

    Returns:
        A float32 0-d tensor on the targets' device. Pass it as ``normalizer=`` (0 counts as 1).

    Example:
        >>> import torch, focalkit as fk
        >>> labels = torch.tensor([[3, 0, 3], [1, 3, -1]])   # 3 classes, 3 = background
        >>> fk.num_positives(labels, num_classes=3, ignore_index=-1)
        tensor(2.)
    """
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if targets.is_floating_point():
            raise TypeError("targets must be integer class indices when num_classes is given")
        pos = (targets >= 0) & (targets < num_classes)
    else:
        pos = targets > 0
    if ignore_index is not None:
        pos = pos & (targets != ignore_index)
    count = pos.sum().to(torch.float32)
    if reduce_across_ranks and dist.is_available() and dist.is_initialized():
        dist.all_reduce(count, op=dist.ReduceOp.SUM)
        count = count / dist.get_world_size()
    return count
