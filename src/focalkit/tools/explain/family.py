"""The focal family against cross-entropy: loss and gradient against p_t, and where focal loss flattens.

A common criticism of focal loss is that its loss and gradient die off once p_t passes about 0.75.
The variants answer it in different ways: Poly-1 adds ``epsilon (1 - p_t)^(gamma + 1)`` (more
gradient on easy examples, not less), FLSD-53 uses gamma 5 below p_t = 0.2 and 3 above, the
asymmetric loss (ASL) focuses and shifts only the negatives. :func:`explain_family` puts numbers on
it: for each member, the loss and ``|d loss / d logit|`` at chosen p_t, and the gradient's ratio
to cross-entropy's.

Every number calls the real loss functions (``fk.sigmoid_focal_loss`` with ``gamma``,
``epsilon=`` or ``gamma=fk.FLSD53``, and ``fk.asymmetric_loss``) with ``reduction="none"`` in
float64, and every gradient is autograd through them: nothing here re-types a formula. All
members are evaluated on a *negative* example (label 0, logit ``log((1 - p_t) / p_t)``), because
ASL treats negatives differently from positives; without alpha the other members give a positive
with the same p_t the same numbers, and ASL's positives (gamma_pos 0) follow cross-entropy.

    >>> from focalkit.tools.explain.family import explain_family
    >>> t = explain_family(p_t=[0.9])
    >>> [(m.name, f"{m.ratio[0]:.2g}") for m in t.members]  # doctest: +NORMALIZE_WHITESPACE
    [('CE', '1'), ('focal γ=2', '0.029'), ('Poly-1 ε=1', '1.9'), ('FLSD-53', '0.0038'),
     ('ASL γ-=4 clip=0.05', '2.9e-05')]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import torch

import focalkit as fk
from focalkit import _validation as V

__all__ = ["FAMILY_P_T", "FamilyMember", "FamilyResult", "explain_family", "family_members"]

#: The p_t values of the table ("does it flatten above 0.75?").
FAMILY_P_T: tuple[float, ...] = (0.5, 0.75, 0.9, 0.99)
_DT = torch.float64


@dataclass(frozen=True)
class FamilyMember:
    """One loss at each p_t: ``loss``, ``grad = |d loss / d logit|`` and ``ratio = grad / CE's grad``."""

    name: str
    params: dict[str, Any]
    loss: list[float]
    grad: list[float]
    ratio: list[float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FamilyResult:
    """The p_t values and one :class:`FamilyMember` per loss (cross-entropy first)."""

    p_t: list[float]
    members: list[FamilyMember]

    def to_dict(self) -> dict[str, Any]:
        return {"p_t": self.p_t, "members": [m.to_dict() for m in self.members]}

    def member(self, name: str) -> FamilyMember:
        """The member called ``name`` (KeyError naming the members if there is none)."""
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(f"no member {name!r}; the members are {[m.name for m in self.members]}")


_Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def family_members(
    gamma: float = 2.0,
    epsilon: float = 1.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    flsd53: bool = True,
) -> list[tuple[str, dict[str, Any], _Loss]]:
    """``(name, params, loss(logits, targets))`` of each member, cross-entropy first.

    The callables are the library's losses with ``reduction="none"`` and alpha off: CE
    (gamma 0), focal (``gamma``), Poly-1 cross-entropy (gamma 0, ``epsilon``), FLSD-53
    (``gamma=fk.FLSD53``, when ``flsd53``) and ASL (gamma_pos 0, ``gamma_neg``, ``clip``).
    """
    gamma = V.check_float_gamma(gamma, "gamma")
    epsilon = V.check_epsilon(epsilon)
    gamma_neg = V.check_float_gamma(gamma_neg, "gamma_neg")
    clip = V.check_clip(clip)
    flsd53 = V.check_bool("flsd53", flsd53)

    def sfl(**kw: Any) -> _Loss:
        return lambda x, y: fk.sigmoid_focal_loss(x, y, alpha=None, reduction="none", **kw)

    out: list[tuple[str, dict[str, Any], _Loss]] = [
        ("CE", {"gamma": 0.0}, sfl(gamma=0.0)),
        (f"focal γ={gamma:g}", {"gamma": gamma}, sfl(gamma=gamma)),
        (f"Poly-1 ε={epsilon:g}", {"gamma": 0.0, "epsilon": epsilon}, sfl(gamma=0.0, epsilon=epsilon)),
    ]
    if flsd53:
        out.append(("FLSD-53", {"gamma": {"thresholds": list(fk.FLSD53.thresholds),
                                          "values": list(fk.FLSD53.values)}}, sfl(gamma=fk.FLSD53)))
    out.append((f"ASL γ-={gamma_neg:g} clip={clip:g}",
                {"gamma_pos": 0.0, "gamma_neg": gamma_neg, "clip": clip},
                lambda x, y: fk.asymmetric_loss(x, y, gamma_pos=0.0, gamma_neg=gamma_neg, clip=clip,
                                                reduction="none")))
    return out


def explain_family(
    p_t: Sequence[float] = FAMILY_P_T,
    gamma: float = 2.0,
    epsilon: float = 1.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    flsd53: bool = True,
) -> FamilyResult:
    """Loss and gradient magnitude of each family member at each p_t, and the ratio to CE.

    For a negative example with probability p_t of its (negative) class, i.e. logit
    ``x = log((1 - p_t) / p_t)`` and label 0, ``loss`` is the member's loss and ``grad`` is
    ``|autograd.grad(loss, x)|``; ``ratio = grad / grad_CE`` where cross-entropy's is
    ``1 - p_t``. In closed form (for checking; not how it is computed):

    - focal: ``(1-p_t)^g ((1-p_t) - g p_t log p_t)``, so at p_t = 0.9 with g = 2 it is 2.9 % of CE's;
    - Poly-1 CE: ``(1-p_t)(1 + epsilon p_t)``: 190 % of CE's at p_t = 0.9 with epsilon 1;
    - FLSD-53: focal's with g = 3 above p_t = 0.2 (gamma is a constant in the gradient);
    - ASL on negatives, with p = 1 - p_t and p_m = max(p - clip, 0):
      ``p (1-p) [gamma_neg p_m^(gamma_neg - 1) (-log(1 - p_m)) + p_m^gamma_neg / (1 - p_m)]``, 0
      once p <= clip (p_t >= 1 - clip).

    Args:
        p_t: the probabilities of the true class, each in (0, 1); default 0.5, 0.75, 0.9, 0.99.
        gamma: focal loss's gamma (>= 0).
        epsilon: Poly-1's epsilon (>= -1), on cross-entropy (gamma 0), the paper's classification form.
        gamma_neg, clip: ASL's negative focusing (>= 0) and probability shift in [0, 1); gamma_pos 0.
        flsd53: include FLSD-53 (``gamma=fk.FLSD53``).

    Returns:
        :class:`FamilyResult`, cross-entropy first.

    Example:
        >>> r = explain_family(p_t=[0.5, 0.99], flsd53=False)
        >>> [round(v, 4) for v in r.member("focal γ=2").ratio]
        [0.5966, 0.0003]
    """
    if isinstance(p_t, (str, bytes)) or not isinstance(p_t, Sequence):
        raise TypeError(f"p_t must be a sequence of probabilities, got {type(p_t).__name__}")
    if len(p_t) == 0:
        raise ValueError("p_t must not be empty")
    pts = [V.check_probability(f"p_t[{i}]", v) for i, v in enumerate(p_t)]
    specs = family_members(gamma=gamma, epsilon=epsilon, gamma_neg=gamma_neg, clip=clip, flsd53=flsd53)
    pt = torch.tensor(pts, dtype=_DT)
    y = torch.zeros_like(pt)
    rows: list[tuple[str, dict[str, Any], list[float], list[float]]] = []
    for name, params, fn in specs:
        x = (torch.log1p(-pt) - torch.log(pt)).requires_grad_(True)  # logit of p = 1 - p_t
        loss = fn(x, y)
        (gx,) = torch.autograd.grad(loss.sum(), x)
        rows.append((name, params, loss.detach().tolist(), gx.abs().tolist()))
    ce_grad = rows[0][3]
    members = [FamilyMember(name=n, params=p, loss=lv, grad=g,
                            ratio=[gi / ci if ci > 0 else float("nan") for gi, ci in zip(g, ce_grad)])
               for n, p, lv, g in rows]
    return FamilyResult(p_t=pts, members=members)
