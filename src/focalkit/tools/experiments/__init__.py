"""Experiments: train cross-entropy against focal loss on imbalanced data and score them.

Needs the ``experiments`` extra (scikit-learn, matplotlib, rich, typer):
``pip install 'focalkit[experiments]'``.

* :mod:`~focalkit.tools.experiments.data`: built-in tasks (``dense``, ``digits``) and CSV/NPZ files,
  splits and folds;
* :mod:`~focalkit.tools.experiments.models`: the small models;
* :mod:`~focalkit.tools.experiments.train`: :class:`LossSpec` and :func:`fit_and_score`;
* :mod:`~focalkit.tools.experiments.metrics`: held-out metrics for rare classes;
* :mod:`~focalkit.tools.experiments.variants`: the focal family in a comparison (Poly-1, FLSD-53, ASL)
  and the count of tries per family;
* :mod:`~focalkit.tools.experiments.compare`: ``focalkit compare`` (table, JSON, HTML report).
"""

from focalkit.tools.experiments.data import DataError, Dataset, kfold, load_data, train_test_split
from focalkit.tools.experiments.train import LossSpec, fit_and_score

__all__ = [
    "DataError",
    "Dataset",
    "LossSpec",
    "fit_and_score",
    "kfold",
    "load_data",
    "train_test_split",
]
