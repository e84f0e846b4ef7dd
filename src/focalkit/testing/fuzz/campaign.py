"""The campaign: draw cases, run each on every backend, classify the failures, summarize.

:func:`run_campaign` is what ``make fuzz`` (``python -m focalkit.testing.fuzz``) and the CI subset
(tests/core/test_fuzz.py) call. Case ``i`` of a campaign tests the loss ``losses[i % len(losses)]``
and is drawn from ``(seed, i)`` alone, so any case can be replayed on its own.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import torch

import focalkit as fk
from focalkit.testing.fuzz.cases import FLOAT_DTYPES, Case, draw_case
from focalkit.testing.fuzz.check import TOLERANCES, Failure, Outcome, expected, run_case
from focalkit.testing.fuzz.known import KNOWN_ISSUES, KnownIssue, active_known_issues, explain
from focalkit.testing.fuzz.registry import LOSSES

__all__ = ["Report", "case_at", "run_campaign", "run_cases"]


@dataclass
class Report:
    """Everything a campaign saw: the outcomes and the settings that reproduce it."""

    seed: int
    cases: int
    losses: tuple[str, ...]
    backends: tuple[str, ...]
    device: str
    seconds: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    known: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    generator_errors: list[str] = field(default_factory=list)

    @property
    def unexplained(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.unexplained]

    @property
    def ok(self) -> bool:
        return not self.unexplained and not self.generator_errors

    def counts(self) -> dict[str, int]:
        """Campaign totals: evaluations, mismatches (unexplained), NaN/inf seen, known-issue hits."""
        c: Counter[str] = Counter()
        for o in self.outcomes:
            c["evaluations"] += 1
            c["overflow_to_inf"] += o.overflow
            c["gradchecks"] += o.gradcheck
            c["nonfinite_inputs"] += o.nonfinite_input
            if o.unexplained:
                c["failed"] += 1
            for f in o.failures:
                kind = "known" if f.known else ("nan" if "nonfinite" in f.check or f.check == "nan-propagation" else "mismatch")
                c[kind] += 1
        return dict(c)


def case_at(seed: int, index: int, losses: Sequence[str], dtypes: Sequence[torch.dtype] = FLOAT_DTYPES) -> Case:
    """The case ``index`` of the campaign ``seed`` over ``losses``."""
    spec = LOSSES[losses[index % len(losses)]]
    return draw_case(spec, seed, index, dtypes=tuple(dtypes))


def run_cases(
    seed: int,
    indices: Iterable[int],
    *,
    losses: Sequence[str],
    backends: Sequence[str],
    dtypes: Sequence[torch.dtype] = FLOAT_DTYPES,
    device: str = "cpu",
    known: Sequence[KnownIssue] = (),
) -> tuple[list[Outcome], list[str]]:
    """Run the cases ``indices`` on every backend; (outcomes, errors of the harness itself)."""
    outcomes: list[Outcome] = []
    errors: list[str] = []
    for i in indices:
        try:
            case = case_at(seed, i, losses, dtypes)
            spec = LOSSES[case.loss]
            want = expected(spec, case)
        except Exception as exc:  # a harness bug: reported, never counted as a pass
            errors.append(f"case {i}: {type(exc).__name__}: {exc}")
            continue
        for b in backends:
            o = run_case(spec, case, b, want, device=device)
            for f in o.failures:
                f.known = explain(case, o, f, known)
            outcomes.append(o)
    return outcomes, errors


def _worker(args: tuple[Any, ...]) -> tuple[list[Outcome], list[str]]:
    seed, indices, losses, backends, dtypes, device, known_names = args
    torch.set_num_threads(1)
    known = [k for k in KNOWN_ISSUES if k.name in known_names]
    return run_cases(seed, indices, losses=losses, backends=backends, dtypes=dtypes, device=device, known=known)


def run_campaign(
    cases: int,
    seed: int = 0,
    *,
    losses: Sequence[str] | None = None,
    backends: Sequence[str] | None = None,
    dtypes: Sequence[torch.dtype] = FLOAT_DTYPES,
    device: str = "cpu",
    jobs: int = 1,
    start: int = 0,
) -> Report:
    """Run cases ``start .. start + cases - 1`` of the campaign ``seed`` on every backend.

    ``losses`` defaults to every registered loss, ``backends`` to :func:`focalkit.available_backends`.
    Known issues (:data:`~focalkit.testing.fuzz.known.KNOWN_ISSUES`) whose repro still fails here
    explain the failures they match; the others are listed as stale (fixed: their cases count again).

    Example:
        >>> from focalkit.testing.fuzz import run_campaign
        >>> report = run_campaign(4, seed=1, backends=["eager"])
        >>> report.counts()["evaluations"], report.ok
        (4, True)
    """
    losses = tuple(losses or sorted(LOSSES))
    backends = tuple(backends or fk.available_backends())
    active, stale = active_known_issues()
    report = Report(seed=seed, cases=cases, losses=losses, backends=backends, device=device,
                    known=tuple(k.name for k in active), stale=tuple(k.name for k in stale))
    t0 = time.perf_counter()
    indices = list(range(start, start + cases))
    if jobs <= 1:
        out, errs = run_cases(seed, indices, losses=losses, backends=backends, dtypes=dtypes, device=device, known=active)
        report.outcomes, report.generator_errors = out, errs
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        chunks = [indices[k::jobs * 4] for k in range(jobs * 4)]
        args = [(seed, ch, losses, backends, tuple(dtypes), device, report.known) for ch in chunks if ch]
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            for out, errs in pool.map(_worker, args):
                report.outcomes += out
                report.generator_errors += errs
        report.outcomes.sort(key=lambda o: (o.index, report.backends.index(o.backend)))
    report.seconds = time.perf_counter() - t0
    return report


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return "inf" if math.isinf(v) else f"{v:.2g}"


def _measured(o: Outcome, err: float | None, checks: tuple[str, ...]) -> bool:
    """An error that counts in the summary's maxima: measured, finite, not a known issue's."""
    if err is None or math.isinf(err):
        return False
    return not any(f.known and f.check in checks for f in o.failures)


def summary(report: Report, *, max_failures: int = 20) -> str:
    """The campaign's summary: per loss, backend and dtype, then the failures with their replay."""
    lines = [
        f"focalkit fuzz: {report.cases} cases x {len(report.backends)} backends ({', '.join(report.backends)}), "
        f"seed {report.seed}, device {report.device}, losses {', '.join(report.losses)}, "
        f"{report.seconds:.0f} s",
    ]
    rows: dict[tuple[str, str, str], list[Outcome]] = defaultdict(list)
    for o in report.outcomes:
        rows[(o.loss, o.backend, o.dtype)].append(o)
    lines.append("max errors: normwise (max |error| / max |reference|), of the checks no known issue explains; "
                 "half ulps: float16/bfloat16 against the float32 run rounded once")
    head = f"{'loss':<14} {'backend':<9} {'dtype':<8} {'cases':>5} {'reached kernel':<24} {'fail':>4} {'known':>5} " \
           f"{'max loss err':>12} {'max grad err':>12} {'tol':>6} {'half ulps':>9}"
    lines += ["", head, "-" * len(head)]
    for (loss, backend, dtype), outs in sorted(rows.items()):
        reached = Counter(o.reached for o in outs if o.reached)
        top = ", ".join(f"{k} {v}" for k, v in reached.most_common(2))
        # the largest errors of the checks no known issue explains (those are counted under "known")
        errs = [o.loss_err for o in outs if _measured(o, o.loss_err, ("loss",))]
        gerrs = [o.grad_err for o in outs if _measured(o, o.grad_err, ("grad",))]
        ulps = [o.half_ulps for o in outs if _measured(o, o.half_ulps, ("half-loss", "half-grad"))]
        tol = TOLERANCES[getattr(torch, dtype)].loss
        fail = sum(1 for o in outs if o.unexplained)
        known = sum(1 for o in outs if o.failures and not o.unexplained)
        lines.append(
            f"{loss:<14} {backend:<9} {dtype:<8} {len(outs):>5} {top:<24} {fail:>4} {known:>5} "
            f"{_fmt(max(errs, default=None)):>12} {_fmt(max(gerrs, default=None)):>12} {tol:>6.0e} "
            f"{_fmt(max(ulps, default=None)):>9}"
        )
    c = report.counts()
    lines += [
        "",
        f"evaluations {c.get('evaluations', 0)}, failed {c.get('failed', 0)} (mismatches {c.get('mismatch', 0)}, "
        f"NaN/inf {c.get('nan', 0)}), known-issue hits {c.get('known', 0)}, gradchecks {c.get('gradchecks', 0)}, "
        f"cases with a NaN/inf logit {c.get('nonfinite_inputs', 0)}, exact values beyond the dtype's range "
        f"(inf expected and seen) {c.get('overflow_to_inf', 0)}",
    ]
    by_known = Counter(f.known for o in report.outcomes for f in o.failures if f.known)
    for k in KNOWN_ISSUES:
        if k.name in report.known:
            lines.append(f"known issue {k.name} ({k.ref}): {by_known.get(k.name, 0)} failed checks explained")
        elif k.name in report.stale:
            lines.append(f"known issue {k.name} ({k.ref}): FIXED, its repro passes: its cases count again; "
                         "delete its entry from focalkit/testing/fuzz/known.py")
    for e in report.generator_errors[:max_failures]:
        lines.append(f"HARNESS ERROR {e}")
    shown = 0
    for o in report.unexplained:
        if shown >= max_failures:
            lines.append(f"... {len(report.unexplained) - shown} more failed evaluations")
            break
        shown += 1
        for f in o.unexplained:
            lines.append(f"FAIL case {o.index} {o.loss} {o.backend} {o.dtype} {o.api} [{o.reached}] {f.check}: {f.detail}")
        lines.append(f"  replay: python -m focalkit.testing.fuzz --seed {report.seed} --replay {o.index} "
                     f"--losses {','.join(report.losses)} --backends {o.backend}")
    lines.append("PASS" if report.ok else "FAIL")
    return "\n".join(lines)


def default_jobs() -> int:
    return max(1, min(8, (os.cpu_count() or 1)))
