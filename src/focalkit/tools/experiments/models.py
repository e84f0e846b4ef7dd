"""Small models for the comparison: an MLP for tables, a fully-convolutional net for dense data.

Both end in a linear classifier exposed as ``model.head`` whose bias :func:`init_prior_bias` sets
with :func:`focalkit.prior_bias` (Lin et al., Sec. 4.1). Neither has batch norm, so a
DistributedDataParallel step equals a single-process step on the global batch.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

import focalkit as fk

__all__ = ["MLP", "DenseFCN", "build_model", "init_prior_bias", "model_signature"]


class MLP(nn.Module):
    """``in_features -> hidden -> hidden -> out_features`` with ReLU; ``head`` is the last layer."""

    def __init__(self, in_features: int, out_features: int, hidden: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.head = nn.Linear(hidden, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class DenseFCN(nn.Module):
    """Fully-convolutional anchor classifier: (N, Cin, H, W) -> (N, C, H / stride, W / stride).

    A 5x5 convolution with the given stride, two 3x3 convolutions (receptive field 13 pixels,
    enough for a 5x5 object and its surroundings) and a 1x1 classification head.
    """

    def __init__(self, in_channels: int, num_classes: int, stride: int = 2, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 5, stride=stride, padding=2),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def model_signature(ds) -> dict:
    """What a saved model must match to be loaded for ``ds``: architecture and shapes."""
    if ds.task == "dense":
        return {
            "arch": "DenseFCN",
            "in_channels": int(ds.X.shape[1]),
            "outputs": ds.num_outputs,
            "stride": ds.stride,
        }
    return {"arch": "MLP", "in_features": int(ds.X.shape[1]), "outputs": ds.num_outputs}


def build_model(ds, *, seed: int | None = None) -> nn.Module:
    """The model for ``ds`` (a :class:`~focalkit.tools.experiments.data.Dataset`), PyTorch default init.

    With ``seed`` the initialization is drawn from ``torch.manual_seed(seed)``. Dense: a
    :class:`DenseFCN` mapping (N, channels, H, W) to (N, C, H / stride, W / stride); tables: an
    :class:`MLP` mapping (N, d) to (N, 1) for binary or (N, C).

    Example:
        >>> from focalkit.tools.experiments.data import load_data
        >>> build_model(load_data("digits"), seed=0)(torch.zeros(2, 64)).shape
        torch.Size([2, 10])
    """
    if seed is not None:
        torch.manual_seed(seed)
    if ds.task == "dense":
        return DenseFCN(int(ds.X.shape[1]), ds.num_outputs, stride=ds.stride)
    return MLP(int(ds.X.shape[1]), ds.num_outputs)


def init_prior_bias(model: nn.Module, prior: float | Sequence[float]) -> None:
    r"""Set ``model.head.bias`` so the model starts at the given class prior(s).

    Each output c gets :math:`b_c = -\log((1 - \pi_c) / \pi_c)` (:func:`focalkit.prior_bias`); a
    single float applies to every output. The paper uses :math:`\pi = 0.01` for its sigmoid heads.
    For a softmax head the probabilities then start close to :math:`\pi_c` (exactly proportional to
    :math:`\pi_c / (1 - \pi_c)`).

    Example:
        >>> m = MLP(4, 1)
        >>> init_prior_bias(m, 0.01)
        >>> round(m.head.bias.item(), 4)
        -4.5951
    """
    bias = model.head.bias
    n = bias.numel()
    pis = [float(prior)] * n if np.isscalar(prior) else [float(p) for p in prior]
    if len(pis) != n:
        raise ValueError(f"prior has {len(pis)} values, the head has {n} outputs")
    vals = [fk.prior_bias(min(max(p, 1e-6), 1 - 1e-6)) for p in pis]
    if not all(math.isfinite(v) for v in vals):  # pragma: no cover - clamped above
        raise ValueError("prior must be in (0, 1)")
    with torch.no_grad():
        bias.copy_(torch.tensor(vals, dtype=bias.dtype))
