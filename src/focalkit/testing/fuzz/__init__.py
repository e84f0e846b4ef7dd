"""A standing fuzz campaign of focalkit's losses against the float64 reference.

Random cases (shapes from empty to 5-D, every float dtype, gamma in [0, 10], alpha None/float/per
class, every reduction, ignore_index, weight, normalizer, label smoothing, logits up to +-1e4,
non-contiguous/expanded/channels_last layouts, hard/soft/mask/class-index targets, the function,
the module and :class:`focalkit.FocalLoss`) run on every backend of
:func:`focalkit.available_backends` and are checked against :mod:`focalkit.testing.reference`
(loss and finite-difference gradient), within the tolerances of
:data:`~focalkit.testing.fuzz.check.TOLERANCES`. See docs/fuzz.md.

* :mod:`.registry`: the losses under test (:class:`LossSpec`, :func:`register`);
* :mod:`.cases`: how a case is drawn and laid out;
* :mod:`.check`: the checks and the tolerances;
* :mod:`.known`: known bugs, each with a minimal repro, re-enabled once fixed;
* :mod:`.campaign`: the loop and the summary. ``python -m focalkit.testing.fuzz`` (``make fuzz``)
  runs it from the command line.

Example:
    >>> from focalkit.testing.fuzz import run_campaign
    >>> run_campaign(2, seed=3, backends=["reference"]).counts()["evaluations"]
    2
"""

from focalkit.testing.fuzz.campaign import Report, case_at, run_campaign, run_cases, summary
from focalkit.testing.fuzz.cases import Case, draw_case
from focalkit.testing.fuzz.check import TOLERANCES, Outcome, Tolerance, run_case
from focalkit.testing.fuzz.known import KNOWN_ISSUES, KnownIssue
from focalkit.testing.fuzz.registry import LOSSES, LossSpec, register

__all__ = [
    "KNOWN_ISSUES",
    "LOSSES",
    "TOLERANCES",
    "Case",
    "KnownIssue",
    "LossSpec",
    "Outcome",
    "Report",
    "Tolerance",
    "case_at",
    "draw_case",
    "register",
    "run_campaign",
    "run_case",
    "run_cases",
    "summary",
]
