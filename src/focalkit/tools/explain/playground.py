"""``focalkit explain playground``: one self-contained HTML page with gamma and alpha sliders, and the
focal family's parameters (Poly-1's epsilon, FLSD-53, ASL's gamma_neg and clip).

The page (template ``focalkit/tools/explain/assets/playground.html``) draws the loss and gradient curves on a
``<canvas>``, and fills the four-case table and the shares table, recomputing everything in
JavaScript (float64) whenever a slider moves. No CDN, no server, no external file: it works
offline from ``file://``. The JavaScript implements the same quantities as
:mod:`focalkit.tools.explain`; ``tests/test_playground_browser.py`` drives the page in headless Chromium
and checks its numbers against the Python functions.
"""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

from focalkit import _validation as V
from focalkit.tools.explain.api import DEFAULT_CASES, FIGURE_GAMMAS, _check_alpha

__all__ = ["GAMMA_STEP", "ALPHA_STEP", "EPSILON_STEP", "GAMMA_NEG_STEP", "CLIP_STEP", "playground_html",
           "write_playground"]

#: Slider steps: the initial gamma and alpha are rounded to them.
GAMMA_STEP = 0.05
ALPHA_STEP = 0.01
EPSILON_STEP = 0.1
GAMMA_NEG_STEP = 0.5
CLIP_STEP = 0.01
_MARK = re.compile(r"/\*__FOCALKIT_CONFIG__\*/.*?/\*__END__\*/", re.S)


def _step(value: float, step: float) -> float:
    return round(round(float(value) / step) * step, 10)


def _template() -> str:
    return resources.files("focalkit.tools.explain").joinpath("assets/playground.html").read_text("utf-8")


def playground_html(
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    negatives: int = 1_000_000,
    p_negative: float = 0.99,
    positives: int = 10,
    p_positive: float = 0.01,
    epsilon: float = 1.0,
    flsd53: bool = True,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
) -> str:
    """The playground page as a string, with its sliders and inputs set to these values.

    Args:
        gamma: initial gamma in [0, 10], rounded to :data:`GAMMA_STEP` (the slider runs from 0 to
            max(5, gamma)).
        alpha: initial alpha in [0, 1] rounded to :data:`ALPHA_STEP`, or None (the "alpha off" box
            ticked).
        negatives, p_negative, positives, p_positive: the initial shares inputs (see
            :func:`focalkit.explain.explain_shares`).
        epsilon, flsd53, gamma_neg, clip: the focal family's section (see
            :func:`focalkit.tools.explain.family.explain_family`): Poly-1's epsilon in [-1, 5]
            (slider step :data:`EPSILON_STEP`), whether FLSD-53 is shown, ASL's gamma_neg in
            [0, 8] (step :data:`GAMMA_NEG_STEP`) and clip in [0, 0.2] (step :data:`CLIP_STEP`).

    Example:
        >>> html = playground_html(gamma=1.0)
        >>> html.startswith("<!DOCTYPE html>") and "<script src" not in html
        True
    """
    gamma = V.check_gamma(gamma, maximum=10.0)
    alpha = _check_alpha(alpha)
    negatives = V.check_count("negatives", negatives)
    positives = V.check_count("positives", positives)
    if negatives + positives == 0:
        raise ValueError("negatives and positives must not both be 0")
    from focalkit import __version__
    from focalkit.tools.explain.family import FAMILY_P_T, family_members

    family_members(gamma=gamma, epsilon=epsilon, gamma_neg=gamma_neg, clip=clip, flsd53=flsd53)  # checks
    for name, value, hi in (("epsilon", epsilon, 5.0), ("gamma_neg", gamma_neg, 8.0), ("clip", clip, 0.2)):
        if float(value) > hi:
            raise ValueError(f"{name} must be <= {hi:g} on the playground's slider, got {value}")

    gamma = round(round(float(gamma) / GAMMA_STEP) * GAMMA_STEP, 10)
    config: dict[str, Any] = {
        "version": __version__,
        "gamma": gamma,
        "gamma_max": max(5.0, math.ceil(gamma)),
        "alpha": None if alpha is None else round(round(alpha / ALPHA_STEP) * ALPHA_STEP, 10),
        "cases": [list(c) for c in DEFAULT_CASES],
        "shares": {"negatives": negatives, "p_negative": V.check_probability("p_negative", p_negative),
                   "positives": positives, "p_positive": V.check_probability("p_positive", p_positive)},
        "reference_gammas": list(FIGURE_GAMMAS),
        "family": {"epsilon": _step(epsilon, EPSILON_STEP), "flsd53": flsd53,
                   "gamma_neg": _step(gamma_neg, GAMMA_NEG_STEP), "clip": _step(clip, CLIP_STEP),
                   "p_t": list(FAMILY_P_T)},
    }
    blob = json.dumps(config, allow_nan=False).replace("</", "<\\/")
    html, n = _MARK.subn(lambda _: blob, _template(), count=1)
    if n != 1:  # pragma: no cover - the template ships with the package
        raise RuntimeError("playground template is missing its configuration marker")
    return html


def write_playground(path: str | Path = "playground.html", **kwargs: Any) -> Path:
    """Write :func:`playground_html` (same keyword arguments) to ``path``; returns the path.

    Example:
        >>> import tempfile, pathlib
        >>> p = write_playground(pathlib.Path(tempfile.mkdtemp()) / "pg.html", gamma=0.5)
        >>> p.stat().st_size > 5000
        True
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or Path, got {type(path).__name__}")
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"path must end in .html or .htm, got {str(path)!r}")
    html = playground_html(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
