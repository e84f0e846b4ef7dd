"""The small-size section for two source trees side by side: before/after tables of a change.

    python benchmarks/small_before_after.py BEFORE_SRC AFTER_SRC [--rounds 3] [--repeats 9]

Each round runs ``focalkit.tools.benchmark_small`` (fwd+bwd against PyTorch's loss, one thread,
interleaved repeats) once per tree, each in a fresh process with that tree first on ``PYTHONPATH``,
alternating the trees, so both share the same stretch of a shared machine's load. The table holds
the medians over rounds. Example (the per-call overhead change of issue 11)::

    python benchmarks/small_before_after.py /work/main/src src --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CODE = (
    "import json, sys; from focalkit.tools import benchmark_small as s; "
    "print('ROWS' + json.dumps(s.run(dtypes=sys.argv[2].split(','), repeats=int(sys.argv[1]))))"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--dtypes", default="float32,bfloat16")
    a = ap.parse_args()
    trees = {"before": os.path.abspath(a.before), "after": os.path.abspath(a.after)}
    runs: dict[str, list] = {k: [] for k in trees}
    for r in range(a.rounds):
        for name, src in trees.items():
            env = dict(os.environ, PYTHONPATH=src)
            cmd = [sys.executable, "-c", CODE, str(a.repeats), a.dtypes]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            runs[name].append(json.loads(out.split("ROWS", 1)[1]))
            print(f"round {r} {name}: " + ", ".join(f"{x['case']} {x['dtype']} {x['ratio']}x" for x in runs[name][-1]),
                  file=sys.stderr, flush=True)  # fmt: skip
    before, after = runs["before"], runs["after"]
    print("| case | dtype | PyTorch's loss | before | before / PyTorch | after | after / PyTorch |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for i, row in enumerate(before[0]):
        def med(rs: list, key: str) -> float:
            return statistics.median(run[i][key] for run in rs)

        pt = statistics.median(run[i]["pytorch_us"] for run in before + after)
        print(f"| {row['case']} | {row['dtype']} | {pt:.1f} us | {med(before, 'focalkit_us'):.1f} us | "
              f"{med(before, 'ratio'):.2f}x | {med(after, 'focalkit_us'):.1f} us | {med(after, 'ratio'):.2f}x |")


if __name__ == "__main__":
    main()
