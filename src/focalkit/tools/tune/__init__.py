"""``focalkit tune`` and ``fk.tune``: choose gamma and alpha by k-fold cross-validation (Optuna).

:mod:`focalkit.tools.tune.api` is the API (``tune``, ``tune_data``, ``load_study``, ``load_result``)
and describes the search, the storage and resumption; the other modules are its parts (``space``,
``checks``, ``storage``, ``worker``, ``results``, ``report``, ``objective``, ``schema``, ``cli`` and
``_optuna``, the one adapter of Optuna internals). See ``docs/tune.md``.
Needs the ``tune`` extra (optuna, matplotlib): ``pip install 'focalkit[tune]'``.
"""

from focalkit.tools.tune.api import tune

__all__ = ["tune"]
