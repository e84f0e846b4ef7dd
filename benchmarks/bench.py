"""Forward+backward time and peak memory of focal loss: focalkit's paths against every peer.

The benchmark is :mod:`focalkit.tools.benchmark` (so that ``focalkit bench`` works from any
installation); this script runs it from a source checkout: ``python benchmarks/bench.py --quick``.
See ``benchmarks/README.md`` for what it measures and ``--help`` for the options.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from focalkit.tools.benchmark import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
