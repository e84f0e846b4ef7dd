"""Imbalanced tabular data sets built offline (scikit-learn's bundled data and generators).

Shared by ``gbdt_hessian.py`` and ``gbdt_compare.py``. Each builder returns ``(X, y, description)``
with y in {0, 1} (binary, 1 = the rare class) or {0, ..., K-1} (multi-class).
"""

from __future__ import annotations

import numpy as np


def breast_cancer_rare(seed: int = 0, rate: float = 0.08):
    """scikit-learn's Wisconsin breast-cancer data with the malignant class cut to ``rate``."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    y = 1 - y  # 1 = malignant
    rng = np.random.default_rng(seed)
    neg = np.flatnonzero(y == 0)
    n_pos = int(round(len(neg) * rate / (1 - rate)))
    pos = rng.choice(np.flatnonzero(y == 1), n_pos, replace=False)
    idx = np.sort(np.concatenate([neg, pos]))
    return X[idx], y[idx], f"breast cancer, malignant cut to {n_pos}/{len(idx)} ({100 * n_pos / len(idx):.0f}%)"


def synthetic_rare(seed: int = 0):
    """make_classification: 6000 rows, 20 features (5 informative), weights 97/3, 2% label noise (4% positives)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(6000, n_features=20, n_informative=5, n_redundant=5, weights=[0.97],
                               flip_y=0.02, class_sep=0.8, random_state=seed)
    return X, y, f"make_classification, {int(y.sum())}/{len(y)} positives ({100 * y.mean():.1f}%), 2% label noise"


def digits_one_vs_rest(seed: int = 0, digit: int = 8, rate: float = 0.04):
    """scikit-learn's 8x8 digits: one digit (often confused) against the rest, cut to ``rate``."""
    from sklearn.datasets import load_digits

    X, d = load_digits(return_X_y=True)
    y = (d == digit).astype(int)
    rng = np.random.default_rng(seed)
    neg = np.flatnonzero(y == 0)
    n_pos = int(round(len(neg) * rate / (1 - rate)))
    pos = rng.choice(np.flatnonzero(y == 1), n_pos, replace=False)
    idx = np.sort(np.concatenate([neg, pos]))
    return X[idx], y[idx], f"digits, '{digit}' vs rest cut to {n_pos}/{len(idx)} ({100 * n_pos / len(idx):.0f}%)"


def synthetic_multiclass(seed: int = 0):
    """make_classification, 4 classes with 80/12/5/3% of 3000 rows."""
    from sklearn.datasets import make_classification

    X, y = make_classification(3000, n_features=20, n_informative=6, n_classes=4, weights=[0.8, 0.12, 0.05],
                               flip_y=0.02, class_sep=0.8, random_state=seed)
    counts = np.bincount(y)
    return X, y, "make_classification, 4 classes " + "/".join(str(c) for c in counts)


BINARY = {"breast_cancer": breast_cancer_rare, "synthetic": synthetic_rare, "digits": digits_one_vs_rest}
MULTICLASS = {"synthetic_4class": synthetic_multiclass}


def split(y: np.ndarray, seed: int, test_fraction: float = 0.3):
    """A stratified train/test split of row indices."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    return train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=y)
