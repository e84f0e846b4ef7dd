"""The losses under test: one :class:`LossSpec` per loss, in :data:`LOSSES`.

A spec names the loss, its focalkit function and module, its float64 reference and reference
gradient (:mod:`focalkit.testing.reference`), and how its cases are drawn: the base generator of its
``family`` (``"sigmoid"``: per-element, ``"softmax"``: per-position over dimension 1) plus ``extra``,
which draws the loss's own keyword arguments. A loss of the focal family (Poly-1, ASL, QFL, VFL)
joins the campaign with one :func:`register` call, as Poly-1 does (the focal losses with a
drawn ``epsilon``)::

    register(LossSpec(
        name="poly1_softmax", family="softmax",
        function=fk.softmax_focal_loss, module=fk.SoftmaxFocalLoss,
        reference=reference.softmax_focal_loss, reference_grad=reference.softmax_focal_grad,
        extra=draw_epsilon, focal_modes=_softmax_modes,
    ))

Example:
    >>> from focalkit.testing.fuzz import LOSSES
    >>> sorted(LOSSES)
    ['asymmetric', 'poly1_sigmoid', 'poly1_softmax', 'quality_focal', 'sigmoid_focal', 'softmax_focal', 'varifocal']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np

import focalkit as fk
from focalkit.testing import reference, reference_family

__all__ = ["LOSSES", "LossSpec", "draw_epsilon", "register"]


@dataclass(frozen=True)
class LossSpec:
    """A loss under test.

    Attributes:
        name: the key in :data:`LOSSES` (also printed in the summary).
        family: ``"sigmoid"`` or ``"softmax"``: which base case generator draws its inputs.
        function: the focalkit function, ``function(logits, targets, **kwargs)``.
        module: the ``nn.Module`` taking the same keyword arguments in its constructor, with
            ``forward(logits, targets, *, weight=None, normalizer=None)``.
        reference: the float64 NumPy reference, same arguments (``validate_args`` excepted).
        reference_grad: d(loss)/d(logits) of the reference (``grad_output=``, ``step=``).
        extra: draws the loss's own keyword arguments from a NumPy generator (or None).
        focal_modes: the :class:`focalkit.FocalLoss` modes that compute this loss for a target
            form and a logits shape (None: FocalLoss does not offer it).
        exact_tails: the loss can be computed to relative accuracy everywhere, confident
            predictions included (log-sigmoid is exact in both tails): its loss is then compared
            relative to itself, without the floor of a few roundoffs of the natural scale that a
            log-softmax needs (see :func:`focalkit.testing.fuzz.check.natural_scale`).
        drop: the base generator's arguments the loss does not take (the asymmetric and quality
            losses have no ``alpha``; the family's sigmoid losses no ``label_smoothing``).
    """

    name: str
    family: Literal["sigmoid", "softmax"]
    function: Callable[..., Any]
    module: Callable[..., Any]
    reference: Callable[..., np.ndarray]
    reference_grad: Callable[..., np.ndarray]
    extra: Callable[[np.random.Generator], dict[str, Any]] | None = None
    focal_modes: Callable[[str, tuple[int, ...]], tuple[str, ...]] | None = None
    exact_tails: bool = False
    drop: tuple[str, ...] = ()


def _sigmoid_modes(form: str, shape: tuple[int, ...]) -> tuple[str, ...]:
    # "binary" is the sigmoid loss for one class: (N,), (N, 1) or (N, 1, d1, ...) logits
    binary = len(shape) <= 1 or shape[1] == 1
    if form == "squeezed":
        return ("binary",)
    return ("multilabel", "binary") if binary else ("multilabel",)


def _softmax_modes(form: str, shape: tuple[int, ...]) -> tuple[str, ...]:
    return ("multiclass",)


LOSSES: dict[str, LossSpec] = {}


def register(spec: LossSpec) -> None:
    """Add (or replace) a loss in the campaign."""
    if not isinstance(spec, LossSpec):
        raise TypeError(f"spec must be a LossSpec, got {type(spec).__name__}")
    if spec.family not in ("sigmoid", "softmax"):
        raise ValueError(f"family must be 'sigmoid' or 'softmax', got {spec.family!r}")
    LOSSES[spec.name] = spec


register(LossSpec(
    name="sigmoid_focal", family="sigmoid",
    function=fk.sigmoid_focal_loss, module=fk.SigmoidFocalLoss,
    reference=reference.sigmoid_focal_loss, reference_grad=reference.sigmoid_focal_grad,
    focal_modes=_sigmoid_modes, exact_tails=True,
))  # fmt: skip
register(LossSpec(
    name="softmax_focal", family="softmax",
    function=fk.softmax_focal_loss, module=fk.SoftmaxFocalLoss,
    reference=reference.softmax_focal_loss, reference_grad=reference.softmax_focal_grad,
    focal_modes=_softmax_modes,
))  # fmt: skip


def draw_epsilon(rng: np.random.Generator) -> dict[str, Any]:
    """Poly-1's epsilon: its bound -1, small and large values (never 0, the plain loss)."""
    return {"epsilon": float(rng.choice([-1.0, float(rng.uniform(-1.0, 0.0)), float(rng.uniform(0.0, 3.0)), 1.0]))
            or 1.0}


register(LossSpec(
    name="poly1_sigmoid", family="sigmoid",
    function=fk.sigmoid_focal_loss, module=fk.SigmoidFocalLoss,
    reference=reference.sigmoid_focal_loss, reference_grad=reference.sigmoid_focal_grad,
    extra=draw_epsilon, focal_modes=_sigmoid_modes,
    # not exact_tails: with epsilon near -1 the loss q^g (ce - |epsilon| q) is a difference of two
    # nearly equal terms for confident predictions (ce = q + q^2/2 + ...), so float32 keeps only
    # the natural scale's roundoff there, not relative accuracy
))  # fmt: skip
register(LossSpec(
    name="poly1_softmax", family="softmax",
    function=fk.softmax_focal_loss, module=fk.SoftmaxFocalLoss,
    reference=reference.softmax_focal_loss, reference_grad=reference.softmax_focal_grad,
    extra=draw_epsilon, focal_modes=_softmax_modes,
))  # fmt: skip


# The family's sigmoid losses. Their draws avoid the kinks where the loss is not differentiable (the
# finite-difference reference gradient would straddle them): ASL's p = clip when gamma_neg < 2 (so
# clip > 0 only with gamma_neg >= 2) and QFL's p = t for beta < 2 (so beta is 0 or >= 2). Exponents
# below 1, clip 0 and gamma_neg 0 are in tests/core/test_family_common.py.
def _draw_asl(rng: np.random.Generator) -> dict[str, Any]:
    shifted = bool(rng.random() < 0.5)
    return {
        "gamma_pos": float(rng.choice([0.0, float(rng.uniform(0.0, 4.0))])),
        "gamma_neg": float(rng.uniform(2.0, 6.0)) if shifted else float(rng.choice([0.0, float(rng.uniform(0.0, 6.0))])),
        "clip": float(rng.uniform(0.0, 0.2)) if shifted else 0.0,
    }


def _draw_qfl(rng: np.random.Generator) -> dict[str, Any]:
    return {"beta": float(rng.choice([0.0, 2.0, float(rng.uniform(2.0, 4.0))]))}


def _draw_vfl(rng: np.random.Generator) -> dict[str, Any]:
    return {"alpha": float(rng.uniform(0.0, 1.0)), "gamma": float(rng.choice([0.0, 2.0, float(rng.uniform(0.0, 4.0))])),
            "iou_weighted": bool(rng.random() < 0.7)}


register(LossSpec(
    name="asymmetric", family="sigmoid", function=fk.asymmetric_loss, module=fk.AsymmetricLoss,
    reference=reference_family.asymmetric_loss, reference_grad=reference_family.asymmetric_grad,
    extra=_draw_asl, drop=("alpha", "gamma", "label_smoothing"),
))  # fmt: skip
register(LossSpec(
    name="quality_focal", family="sigmoid", function=fk.quality_focal_loss, module=fk.QualityFocalLoss,
    reference=reference_family.quality_focal_loss, reference_grad=reference_family.quality_focal_grad,
    extra=_draw_qfl, drop=("alpha", "gamma", "label_smoothing"),
))  # fmt: skip
register(LossSpec(
    name="varifocal", family="sigmoid", function=fk.varifocal_loss, module=fk.VarifocalLoss,
    reference=reference_family.varifocal_loss, reference_grad=reference_family.varifocal_grad,
    extra=_draw_vfl, drop=("label_smoothing",),
))  # fmt: skip
