"""``focalkit tune`` and ``fk.tune``: choose gamma and alpha by k-fold cross-validation (Optuna).

See :mod:`focalkit.tools.tune.api` for the search, the storage and resumption, and ``docs/tune.md``.
Needs the ``tune`` extra (optuna, matplotlib): ``pip install 'focalkit[tune]'``.
"""

from focalkit.tools.tune.api import tune

__all__ = ["tune"]
