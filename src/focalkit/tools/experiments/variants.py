"""The focal family in ``focalkit compare``: Poly-1, FLSD-53 and the asymmetric loss (ASL).

Besides cross-entropy (``ce``), alpha-balanced cross-entropy (``balanced_ce``) and focal loss
(``focal``), a comparison can train

* ``poly1``: Poly-1 (Leng et al., ICLR 2022), ``FL + epsilon (1 - p_t)^(gamma + 1)`` through
  ``fk.sigmoid_focal_loss(..., epsilon=)`` / ``fk.softmax_focal_loss(..., epsilon=)``. With the
  default gamma 0 it is Poly-1 cross-entropy, ``CE + epsilon (1 - p_t)``, without alpha (as CE);
  with gamma > 0 it is Poly-1 focal loss with focal loss's alpha.
* ``flsd53``: focal loss with the sample-dependent gamma ``fk.FLSD53`` (Mukhoti et al., NeurIPS
  2020: gamma 5 where p_t < 0.2, 3 above) and focal loss's alpha.
* ``asl``: ``fk.asymmetric_loss`` (Ridnik et al., ICCV 2021), ``gamma_pos`` on positives,
  ``gamma_neg`` and the probability shift ``clip`` on negatives, no alpha. It is a sigmoid
  (binary / multi-label) loss: it does not apply to a multi-class softmax task.

This module holds the parts that know about tasks and kinds but not about training: which loss
applies to which task (:func:`not_applicable`), the parameter checks (:func:`check_epsilon`,
:func:`check_clip`), the training loss of the asymmetric kind (:func:`asl_batch_loss`) and the count
of tries each family got (:func:`budget`).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

import focalkit as fk
from focalkit import _validation as V

__all__ = [
    "VARIANT_KINDS",
    "FAMILIES",
    "ASL_DEFAULTS",
    "POLY1_DEFAULTS",
    "not_applicable",
    "check_epsilon",
    "check_clip",
    "asl_batch_loss",
    "family_of",
    "budget",
    "budget_text",
]

#: The kinds this module adds to ``ce``, ``balanced_ce`` and ``focal``.
VARIANT_KINDS: tuple[str, ...] = ("poly1", "flsd53", "asl")
#: The family (a line of the "tries" summary) of each kind.
FAMILIES: dict[str, str] = {"ce": "cross-entropy", "balanced_ce": "cross-entropy", "focal": "focal",
                            "poly1": "Poly-1", "flsd53": "FLSD-53", "asl": "ASL"}
#: The papers' defaults: ASL's multi-label setting (gamma_pos 0, gamma_neg 4, clip 0.05).
ASL_DEFAULTS: dict[str, float] = {"gamma_pos": 0.0, "gamma_neg": 4.0, "clip": 0.05}
#: Poly-1 cross-entropy with the paper's epsilon for classification.
POLY1_DEFAULTS: dict[str, float] = {"epsilon": 1.0, "gamma": 0.0}


def not_applicable(kind: str, task: str) -> str | None:
    """Why ``kind`` cannot train on ``task`` (``None`` when it can).

    Example:
        >>> not_applicable("asl", "multiclass")[:40]
        'asl is a sigmoid (binary / multi-label) '
        >>> not_applicable("poly1", "multiclass") is None
        True
    """
    if kind == "asl" and task == "multiclass":
        return ("asl is a sigmoid (binary / multi-label) loss and does not apply to this multi-class "
                "(softmax) task; left out")
    return None


def check_epsilon(epsilon: Any, name: str = "epsilon") -> float:
    """Poly-1's epsilon: a finite number >= -1 (:func:`focalkit._validation.check_epsilon`)."""
    return V.check_epsilon(epsilon, name)


def check_clip(clip: Any, name: str = "clip") -> float:
    """ASL's probability shift, in [0, 1) (:func:`focalkit._validation.check_clip`), the message
    naming ``name`` (an option of the command line, a field of the config)."""
    try:
        return V.check_clip(clip)
    except (TypeError, ValueError) as e:
        raise type(e)(str(e).replace("clip", name, 1)) from None


def asl_batch_loss(task: str, logits: Tensor, y: Tensor, *, gamma_pos: float, gamma_neg: float,
                   clip: float, num_classes: int) -> Tensor:
    """The asymmetric loss of one batch, reduced like the other losses of the task.

    * binary: ``fk.asymmetric_loss(logits[:, 0], y)``, mean over examples;
    * dense: the per-anchor, per-class targets (one-hot of the class indices, background = all
      zeros) summed and divided by :func:`focalkit.num_positives`, as for focal loss (RetinaNet).

    Example:
        >>> x, y = torch.zeros(4, 1), torch.tensor([0, 1, 0, 0])
        >>> float(asl_batch_loss("binary", x, y, gamma_pos=0.0, gamma_neg=0.0, clip=0.0, num_classes=2))
        0.6931...
    """
    if task == "binary":
        return fk.asymmetric_loss(logits[:, 0], y.to(logits.dtype), gamma_pos=gamma_pos,
                                  gamma_neg=gamma_neg, clip=clip)
    if task == "dense":
        onehot = torch.nn.functional.one_hot(y, num_classes + 1)[..., :num_classes]
        t = onehot.movedim(-1, 1).to(logits.dtype)
        norm = fk.num_positives(y, num_classes)
        total = fk.asymmetric_loss(logits, t, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip,
                                   reduction="sum")
        return total / norm
    raise ValueError(not_applicable("asl", task) or f"unknown task {task!r}")


def family_of(kind: str) -> str:
    """The family name of a loss kind (``"cross-entropy"`` for ``ce`` and ``balanced_ce``)."""
    return FAMILIES[kind]


def budget(specs: Sequence[Any]) -> dict[str, list[str]]:
    """Loss names per family, in order: how many tries (trained settings) each family got.

    Example:
        >>> from focalkit.tools.experiments.train import LossSpec
        >>> budget([LossSpec("ce"), LossSpec("focal", gamma=1.0), LossSpec("focal", gamma=2.0)])
        {'cross-entropy': ['CE'], 'focal': ['focal γ=1', 'focal γ=2']}
    """
    out: dict[str, list[str]] = {}
    for s in specs:
        out.setdefault(family_of(s.kind), []).append(s.name)
    return out


def budget_text(tries: dict[str, list[str]], metric: str = "AP") -> list[str]:
    """The lines ``focalkit compare`` prints about the tries: one per family, then whether the
    cross-entropy and focal families got the same number (the answer compares their best means).

    Example:
        >>> budget_text({"cross-entropy": ["CE"], "focal": ["focal γ=1", "focal γ=2"]})[-1]
        'the cross-entropy family got fewer tries (1) than focal loss (2): its best-of is less optimistic'
    """
    lines = [f"{fam}: {len(names)} tr{'y' if len(names) == 1 else 'ies'} ({', '.join(names)})"
             for fam, names in tries.items()]
    ce, fo = len(tries.get("cross-entropy", [])), len(tries.get("focal", []))
    if ce and fo:
        if ce == fo:
            lines.append(f"cross-entropy and focal loss got {ce} tries each; the answer compares each "
                         f"family's best mean {metric} (chosen the same way for both)")
        elif ce < fo:
            lines.append(f"the cross-entropy family got fewer tries ({ce}) than focal loss ({fo}): "
                         "its best-of is less optimistic")
        else:
            lines.append(f"focal loss got fewer tries ({fo}) than the cross-entropy family ({ce}): "
                         "its best-of is less optimistic")
    return lines
