"""Held-out metrics that matter for rare classes, from predicted probabilities.

Average precision, precision-recall curves, balanced accuracy and the Brier score come from
scikit-learn; the expected calibration error and reliability bins are computed here.

For every task, each rare class c is scored one-vs-rest from the probability of c:

* ``ap``: macro average precision over the rare classes (``average_precision_score``);
* ``f1``: macro over rare classes of the best F1 along the precision-recall curve;
* ``balanced_accuracy``: the mean per-class recall of the hard predictions (binary: p >= 0.5;
  multiclass: arg max; dense: arg max over classes if its probability >= 0.5, else background,
  with background counted as a class);
* ``ece``: macro over rare classes of the classwise expected calibration error (15 equal bins);
* ``brier``: macro over rare classes of the one-vs-rest Brier score (``brier_score_loss``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "expected_calibration_error",
    "reliability_bins",
    "best_f1",
    "pr_curve",
    "evaluate",
    "class_scores",
    "METRICS",
    "TUNABLE_METRICS",
    "HIGHER_IS_BETTER",
]

#: Every metric that ``focalkit compare`` reports, in table order.
METRICS = ("ap", "f1", "balanced_accuracy", "ece", "brier", "train_time")
#: The metrics ``focalkit tune`` can optimise (a subset of METRICS: no time, and one calibration score).
TUNABLE_METRICS = ("ap", "f1", "balanced_accuracy", "ece")
HIGHER_IS_BETTER = {
    "ap": True,
    "f1": True,
    "balanced_accuracy": True,
    "ece": False,
    "brier": False,
    "train_time": False,
}


def _check_binary(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).reshape(-1)
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"y_true and prob must have the same length, got {y.shape} and {p.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y_true must hold 0/1 labels")
    if p.size and (np.nanmin(p) < 0 or np.nanmax(p) > 1 or np.isnan(p).any()):
        raise ValueError("prob must hold probabilities in [0, 1]")
    return y.astype(np.float64), p


def reliability_bins(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 15) -> dict[str, list]:
    """Equal-width reliability bins of binary predictions.

    Bin b holds the predictions in ``[b / n_bins, (b + 1) / n_bins)`` (the last bin includes 1).

    Returns:
        ``{"edges": n_bins + 1 floats, "confidence": mean prob per bin, "frequency": fraction of
        positives per bin, "count": examples per bin}``; empty bins have NaN confidence/frequency.

    Example:
        >>> reliability_bins([0, 1, 1], [0.2, 0.9, 1.0], n_bins=2)["count"]
        [1, 2]
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    y, p = _check_binary(y_true, prob)
    b = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(b, minlength=n_bins).astype(np.float64)
    conf_sum = np.bincount(b, weights=p, minlength=n_bins)
    pos_sum = np.bincount(b, weights=y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(count > 0, conf_sum / count, np.nan)
        freq = np.where(count > 0, pos_sum / count, np.nan)
    return {
        "edges": np.linspace(0.0, 1.0, n_bins + 1).tolist(),
        "confidence": conf.tolist(),
        "frequency": freq.tolist(),
        "count": count.astype(int).tolist(),
    }


def expected_calibration_error(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 15) -> float:
    r"""Expected calibration error of binary predictions with equal-width bins.

    .. math:: \mathrm{ECE} = \sum_b \frac{n_b}{n} \left| \bar y_b - \bar p_b \right|

    where bin b holds :math:`n_b` predictions with mean probability :math:`\bar p_b` and positive
    fraction :math:`\bar y_b`.

    Args:
        y_true: (n,) 0/1 labels.
        prob: (n,) predicted probabilities of the positive class.
        n_bins: number of bins on [0, 1].

    Example:
        >>> round(expected_calibration_error([0, 1, 1, 1], [0.1, 0.9, 0.9, 0.3], n_bins=2), 6)
        0.2
    """
    y, p = _check_binary(y_true, prob)
    if y.size == 0:
        raise ValueError("y_true is empty")
    r = reliability_bins(y, p, n_bins)
    count = np.asarray(r["count"], np.float64)
    gap = np.abs(np.nan_to_num(np.asarray(r["frequency"])) - np.nan_to_num(np.asarray(r["confidence"])))
    return float((count * gap).sum() / count.sum())


def best_f1(y_true: np.ndarray, prob: np.ndarray) -> tuple[float, float]:
    r"""The highest F1 over all thresholds and that threshold (0.0 and 1.0 when no positives).

    :math:`F_1 = 2PR / (P + R)` at each point of the precision-recall curve; predictions
    ``prob >= threshold`` are positive. ``y_true`` and ``prob`` have shape (n,).

    Example:
        >>> best_f1([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
        (0.8, 0.4)
    """
    from sklearn.metrics import precision_recall_curve

    y, p = _check_binary(y_true, prob)
    if y.sum() == 0:
        return 0.0, 1.0
    precision, recall, thr = precision_recall_curve(y, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    i = int(np.argmax(f1[:-1])) if len(thr) else 0
    return float(f1[i]), float(thr[i]) if len(thr) else 1.0


def pr_curve(y_true: np.ndarray, prob: np.ndarray, max_points: int = 200) -> dict[str, list]:
    """Precision-recall curve (scikit-learn) reduced to its corners, at most ``max_points`` points.

    Returns ``{"precision": [...], "recall": [...]}`` in order of decreasing recall, ending at
    (recall 0, precision 1) as scikit-learn's curve does.
    """
    from sklearn.metrics import precision_recall_curve

    y, p = _check_binary(y_true, prob)
    if y.sum() == 0:
        return {"precision": [], "recall": []}
    precision, recall, _ = precision_recall_curve(y, p)
    # recall is non-increasing along the arrays; of each run of equal recall keep the last point
    # (the highest threshold, so the highest precision): the curve's corners, at most one per
    # positive, then at most max_points of them evenly
    last = np.flatnonzero(np.r_[recall[1:] != recall[:-1], True])
    if len(last) > max_points:
        last = last[np.unique(np.linspace(0, len(last) - 1, max_points).round().astype(int))]
    precision, recall = precision[last], recall[last]
    return {"precision": precision.round(5).tolist(), "recall": recall.round(5).tolist()}


def class_scores(task: str, probs: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Flatten predictions to ``(scores (m, K), labels (m,))`` with one column per class.

    binary: probs (n,) of class 1 -> columns [1 - p, p]; multiclass: (n, C); dense: probs
    (n, C, h, w) and labels (n, h, w) with C = background -> (n*h*w, C) and labels in [0, C].
    """
    probs = np.asarray(probs, np.float64)
    y = np.asarray(y).reshape(-1)
    if task == "binary":
        p = probs.reshape(-1)
        return np.stack([1 - p, p], 1), y
    if task == "multiclass":
        return probs.reshape(len(y), num_classes), y
    if task == "dense":
        return np.moveaxis(probs, 1, -1).reshape(-1, num_classes), y
    raise ValueError(f"task must be 'binary', 'multiclass' or 'dense', got {task!r}")


def evaluate(
    task: str,
    probs: np.ndarray,
    y: np.ndarray,
    *,
    num_classes: int,
    rare_classes: Sequence[int],
    n_bins: int = 15,
    curves: bool = True,
) -> dict:
    """All held-out metrics (see the module docstring) for one model's predictions.

    Args:
        task: ``"binary"`` (probs (n,) of class 1), ``"multiclass"`` (probs (n, C) summing to 1) or
            ``"dense"`` (probs (n, C, h, w) sigmoid outputs, y (n, h, w) with C = background).
        y: labels.
        num_classes: C (2 for binary).
        rare_classes: the classes scored.
        curves: also return ``pr_curve`` and ``reliability`` per rare class.

    Returns:
        ``{"ap", "f1", "balanced_accuracy", "ece", "brier", "per_class": {c: {...}}}`` plus
        ``"pr_curve"`` / ``"reliability"`` dicts keyed by class when ``curves``.

    Example:
        >>> import numpy as np
        >>> probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
        >>> m = evaluate("multiclass", probs, np.array([0, 1, 0, 1]), num_classes=2, rare_classes=[1])
        >>> m["ap"], m["balanced_accuracy"]
        (1.0, 1.0)
    """
    from sklearn.metrics import average_precision_score, balanced_accuracy_score, brier_score_loss

    scores, labels = class_scores(task, probs, y, num_classes)
    if not rare_classes:
        raise ValueError("rare_classes must not be empty")
    if task == "binary":
        pred = (scores[:, 1] >= 0.5).astype(np.int64)
    elif task == "multiclass":
        pred = scores.argmax(1)
    else:
        pred = np.where(scores.max(1) >= 0.5, scores.argmax(1), num_classes)
    out: dict = {"per_class": {}}
    if curves:
        out["pr_curve"], out["reliability"] = {}, {}
    for c in rare_classes:
        t = (labels == c).astype(np.int64)
        p = scores[:, c]
        ap = float(average_precision_score(t, p)) if t.any() else float("nan")
        f1, thr = best_f1(t, p)
        out["per_class"][int(c)] = {
            "ap": ap,
            "f1": f1,
            "f1_threshold": thr,
            "ece": expected_calibration_error(t, p, n_bins),
            "brier": float(brier_score_loss(t, p, pos_label=1)),
            "positives": int(t.sum()),
        }
        if curves:
            out["pr_curve"][int(c)] = pr_curve(t, p)
            out["reliability"][int(c)] = reliability_bins(t, p, n_bins)
    pc = out["per_class"].values()
    for k in ("ap", "f1", "ece", "brier"):
        out[k] = float(np.nanmean([v[k] for v in pc])) if any(np.isfinite(v[k]) for v in pc) else float("nan")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes absent from predictions are fine
        out["balanced_accuracy"] = float(balanced_accuracy_score(labels, pred))
    return out
