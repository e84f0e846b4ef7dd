"""A complete training loop: semantic segmentation with a rare class, focal loss vs cross-entropy.

Run: python examples/segmentation_training_loop.py [--steps 60]

A tiny fully-convolutional network learns to find small bright squares (about 1% of the pixels)
on a noisy background. The same network, initialization and data are trained twice, once with
``F.cross_entropy`` and once with ``fk.SoftmaxFocalLoss``; the script prints the rare class's
intersection-over-union for both. It shows the API in a real loop (class dimension 1, ignore_index
for a void border, the prior-probability bias), not a benchmark: at this size either loss can win.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import focalkit as fk


def make_batch(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 1, 32, 32, generator=g) * 0.8
    y = torch.zeros(n, 32, 32, dtype=torch.long)
    for i in range(n):
        r, c = torch.randint(2, 27, (2,), generator=g).tolist()
        x[i, 0, r : r + 3, c : c + 3] += 2.0
        y[i, r : r + 3, c : c + 3] = 1
    y[:, 0, :] = 255  # a void border row, ignored
    return x, y


def train(loss_fn, steps: int, seed: int) -> float:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 3, padding=1)
    )
    with torch.no_grad():  # start at p(rare) ~ 0.01, the paper's prior initialization
        net[2].bias.copy_(torch.tensor([0.0, fk.prior_bias(0.01)]))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = make_batch(16, g)
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
    x, y = make_batch(64, torch.Generator().manual_seed(10_000 + seed))
    with torch.no_grad():
        pred = net(x).argmax(1)
    valid = y != 255
    inter = ((pred == 1) & (y == 1) & valid).sum().item()
    union = (((pred == 1) | (y == 1)) & valid).sum().item()
    return inter / max(union, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    focal = fk.SoftmaxFocalLoss(gamma=2.0, ignore_index=255)
    results = {
        "cross-entropy": train(lambda z, y: F.cross_entropy(z, y, ignore_index=255), args.steps, args.seed),
        "focal (gamma=2)": train(focal, args.steps, args.seed),
    }
    for name, iou in results.items():
        print(f"{name:>16}: rare-class IoU = {iou:.3f}")


if __name__ == "__main__":
    main()
