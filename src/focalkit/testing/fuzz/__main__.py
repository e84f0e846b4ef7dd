"""``python -m focalkit.testing.fuzz``: run the fuzz campaign and print its summary (``make fuzz``).

Exit status 0 when every check passed or was explained by a known issue, 1 otherwise.
``--replay I`` prints case I of the campaign and its result on each backend instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import datetime, timezone


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m focalkit.testing.fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=int(os.environ.get("FUZZ_CASES", "10000")),
                   help="number of random cases, each run on every backend (default $FUZZ_CASES or 10000)")
    p.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "0")),
                   help="campaign seed (default $FUZZ_SEED or 0)")
    p.add_argument("--start", type=int, default=0, help="first case index")
    p.add_argument("--losses", default="", help="comma-separated loss names (default: every registered loss)")
    p.add_argument("--backends", default="", help="comma-separated backends (default: fk.available_backends())")
    p.add_argument("--dtypes", default="", help="comma-separated dtypes (default float32,float16,bfloat16,float64)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=int(os.environ.get("FUZZ_JOBS", "0")),
                   help="worker processes (default $FUZZ_JOBS, or the CPU count up to 8)")
    p.add_argument("--replay", type=int, default=None, help="describe and run one case, verbosely")
    p.add_argument("--max-failures", type=int, default=20, help="failures listed in the summary")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.device == "cpu":
        # the Triton kernels run on the CPU through Triton's interpreter (set before they load)
        os.environ.setdefault("TRITON_INTERPRET", "1")
    # The campaign checks the kernels against the reference itself; the first-call check would route
    # a variant it rejects to eager for the rest of the process, out of the campaign's sight.
    os.environ.setdefault("FOCALKIT_TRITON_CHECK", "0")
    import torch

    import focalkit as fk
    from focalkit.testing.fuzz.campaign import case_at, default_jobs, run_campaign, summary
    from focalkit.testing.fuzz.cases import FLOAT_DTYPES
    from focalkit.testing.fuzz.check import expected, run_case
    from focalkit.testing.fuzz.known import active_known_issues, explain
    from focalkit.testing.fuzz.registry import LOSSES

    losses = [s for s in args.losses.split(",") if s] or sorted(LOSSES)
    unknown = [s for s in losses if s not in LOSSES]
    if unknown:
        print(f"unknown loss {unknown[0]!r}; registered: {', '.join(sorted(LOSSES))}", file=sys.stderr)
        return 2
    backends = [s for s in args.backends.split(",") if s] or fk.available_backends()
    dtypes = tuple(getattr(torch, d) for d in args.dtypes.split(",") if d) or FLOAT_DTYPES
    if args.replay is not None:
        case = case_at(args.seed, args.replay, losses, dtypes)
        print(case.describe())
        want = expected(LOSSES[case.loss], case)
        active, _ = active_known_issues()
        for b in backends:
            o = run_case(LOSSES[case.loss], case, b, want, device=args.device)
            for f in o.failures:
                f.known = explain(case, o, f, active)
            status = "ok" if not o.failures else "; ".join(
                f"{f.check}{' (known: ' + f.known + ')' if f.known else ''}: {f.detail}" for f in o.failures)
            print(f"  {b:<9} [{o.reached}] loss err {o.loss_err}, grad err {o.grad_err}: {status}")
        return 0
    jobs = args.jobs or default_jobs()
    report = run_campaign(args.cases, args.seed, losses=losses, backends=backends, dtypes=dtypes,
                          device=args.device, jobs=jobs, start=args.start)
    print(summary(report, max_failures=args.max_failures))
    print(f"date {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; machine {platform.machine()} "
          f"{platform.processor() or ''} {os.cpu_count()} CPUs, {jobs} jobs; python {platform.python_version()}, "
          f"torch {torch.__version__}, numpy {__import__('numpy').__version__}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
