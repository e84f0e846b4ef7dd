"""RetinaNet's classification loss: torchvision's ``compute_loss`` against focalkit's class-index one.

    python benchmarks/retinanet_head.py                      # 2 images x 49,104 anchors x 80 classes
    python benchmarks/retinanet_head.py --images 4 --repeats 11 --threads 1

Times forward + backward of ``RetinaNetClassificationHead.compute_loss`` (torchvision 0.28's code,
re-typed here with its ``ops.sigmoid_focal_loss``: torchvision's only wheel for this torch is a CUDA
build whose C++ extension does not load on a CPU machine; ``tests/integrations/test_torchvision.py``
checks the re-typed method against the real one) and of
``focalkit.integrations.torchvision.retinanet_classification_loss``, on the same logits and
matches: ``--matched`` foreground anchors per image, ``--ignored`` of the anchors between the IoU
thresholds (-2), the rest background (-1). Both losses and gradients are checked to agree before
timing. Prints the median of ``--repeats`` calls after two warm-up calls, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from focalkit.integrations.torchvision import retinanet_classification_loss


def torchvision_sigmoid_focal_loss(inputs, targets, alpha: float = 0.25, gamma: float = 2, reduction: str = "none"):
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.sum() if reduction == "sum" else loss.mean() if reduction == "mean" else loss


def torchvision_compute_loss(targets, head_outputs, matched_idxs):
    """``RetinaNetClassificationHead.compute_loss`` of torchvision 0.28 (BETWEEN_THRESHOLDS = -2)."""
    losses = []
    for targets_i, logits_i, matched_i in zip(targets, head_outputs["cls_logits"], matched_idxs):
        foreground = matched_i >= 0
        num_foreground = foreground.sum()
        gt_classes_target = torch.zeros_like(logits_i)
        gt_classes_target[foreground, targets_i["labels"][matched_i[foreground]]] = 1.0
        valid = matched_i != -2
        losses.append(
            torchvision_sigmoid_focal_loss(logits_i[valid], gt_classes_target[valid], reduction="sum")
            / max(1, num_foreground)
        )
    return sum(losses[1:], losses[0]) / len(targets)


def inputs(images: int, anchors: int, classes: int, matched: int, ignored: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    targets, matched_idxs = [], []
    for _ in range(images):
        targets.append({"labels": torch.randint(0, classes, (5,), generator=g)})
        m = torch.where(torch.rand(anchors, generator=g) < ignored, -2, -1)
        m[torch.randperm(anchors, generator=g)[:matched]] = torch.randint(0, 5, (matched,), generator=g)
        matched_idxs.append(m)
    logits = torch.randn(images, anchors, classes, generator=g) * 2 - 4.6  # about the prior bias
    return targets, logits, matched_idxs


def time_it(fn, logits, repeats: int) -> tuple[float, torch.Tensor, torch.Tensor]:
    times = []
    for i in range(repeats + 2):
        x = logits.detach().requires_grad_(True)
        t0 = time.perf_counter()
        loss = fn(x)
        loss.backward()
        if i >= 2:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), loss.detach(), x.grad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--anchors", type=int, default=49_104)
    ap.add_argument("--classes", type=int, default=80)
    ap.add_argument("--matched", type=int, default=20, help="foreground anchors per image")
    ap.add_argument("--ignored", type=float, default=0.1, help="share of anchors between the thresholds")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    targets, logits, matched = inputs(args.images, args.anchors, args.classes, args.matched, args.ignored)
    tv_ms, tv_loss, tv_grad = time_it(lambda x: torchvision_compute_loss(targets, {"cls_logits": x}, matched), logits, args.repeats)
    fk_ms, fk_loss, fk_grad = time_it(
        lambda x: retinanet_classification_loss(targets, {"cls_logits": x}, matched), logits, args.repeats
    )
    torch.testing.assert_close(fk_loss, tv_loss, rtol=1e-4, atol=0)
    torch.testing.assert_close(fk_grad, tv_grad, rtol=1e-4, atol=1e-8)
    print(
        f"RetinaNet classification loss, forward+backward, {args.images} x {args.anchors} anchors x {args.classes} "
        f"classes, median of {args.repeats}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"  torchvision compute_loss (re-typed):        {tv_ms:8.1f} ms   loss {tv_loss.item():.6f}")
    print(f"  focalkit retinanet_classification_loss:     {fk_ms:8.1f} ms   loss {fk_loss.item():.6f}")
    print(f"  speed-up: {tv_ms / fk_ms:.1f}x (losses and gradients agree)")


if __name__ == "__main__":
    main()
