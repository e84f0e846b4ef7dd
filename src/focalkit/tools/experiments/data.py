"""Data for ``focalkit compare`` and ``focalkit tune``: built-in imbalanced tasks and user files.

Three sources, all loaded into one :class:`Dataset`:

* ``"dense"`` (default): a synthetic dense-prediction task in the spirit of RetinaNet. Grey 48x48
  images with clutter (smooth background, noise, line segments, corners, blobs) and on average one
  small object (a plus, a ring or an X, 5x5 pixels) per image. Labels live on a stride-2 anchor grid
  (24x24 = 576 anchors per image): the anchor under an object's centre holds its class, every other
  anchor is background (value ``num_classes``), so about 1.7 anchors in 1000 are foreground.
* ``"digits"``: scikit-learn's bundled 8x8 handwritten digits (1797 images, no download), with
  digits 3 and 8 subsampled to 1.5 % of the data each; ten-class classification.
* a path to a ``.csv`` (a header row, numeric feature columns and a target column) or ``.npz``
  (arrays ``X`` of shape (n, d) and ``y`` of shape (n,)) file: binary or multi-class.

Nothing here depends on a loss: the data are generated (or subsampled) once from ``seed`` and were
not tuned to favour any loss.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "DataError",
    "Dataset",
    "BUILTIN",
    "load_data",
    "make_dense",
    "make_digits",
    "load_table",
    "train_test_split",
    "kfold",
    "class_counts",
]

BUILTIN = ("dense", "digits")


class DataError(ValueError):
    """A data source that cannot be used; the message says why (shown without a traceback)."""


@dataclass
class Dataset:
    """A classification or dense-prediction task.

    Attributes:
        name: ``"dense"``, ``"digits"`` or the file's name.
        task: ``"binary"`` (one sigmoid logit, positive = class 1 = the rare class),
            ``"multiclass"`` (C softmax logits) or ``"dense"`` (C sigmoid logits per anchor).
        X: binary/multiclass: (n, d) float32 features. dense: (n_images, channels, H, W) float32.
        y: binary/multiclass: (n,) int64 labels in [0, C). dense: (n_images, H / stride, W / stride)
            int64 anchor labels, ``num_classes`` = background.
        num_classes: multiclass: C; binary: 2; dense: number of foreground classes.
        rare_classes: the classes whose average precision is the headline metric.
        class_names: display name of each class (binary: ``[negative, positive]``).
        stride: dense only: image pixels per anchor along each axis.
        description: one line for reports.
    """

    name: str
    task: Literal["binary", "multiclass", "dense"]
    X: np.ndarray
    y: np.ndarray
    num_classes: int
    rare_classes: list[int]
    class_names: list[str] = field(default_factory=list)
    stride: int = 1
    description: str = ""

    def __post_init__(self) -> None:
        if not self.class_names:
            self.class_names = [str(c) for c in range(self.num_classes)]

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def num_outputs(self) -> int:
        """Logits per example (per anchor for dense): 1 for binary, else ``num_classes``."""
        return 1 if self.task == "binary" else self.num_classes


def class_counts(ds: Dataset, idx: np.ndarray | None = None) -> np.ndarray:
    """Examples (anchors for dense, background excluded) per class among ``idx`` (default: all).

    Returns an int64 array of shape (num_classes,).

    Example:
        >>> class_counts(load_data("digits"))[[3, 8]].tolist()
        [22, 22]
    """
    y = ds.y if idx is None else ds.y[idx]
    return np.bincount(y.reshape(-1), minlength=ds.num_classes + (ds.task == "dense"))[
        : ds.num_classes
    ]


# ----------------------------------------------------------------------------- dense (synthetic)

_OBJ = 5  # object template size (pixels)


def _templates() -> list[np.ndarray]:
    plus = np.zeros((_OBJ, _OBJ), np.float32)
    plus[2, :] = 1
    plus[:, 2] = 1
    ring = np.ones((_OBJ, _OBJ), np.float32)
    ring[1:-1, 1:-1] = 0
    cross = np.maximum(np.eye(_OBJ, dtype=np.float32), np.fliplr(np.eye(_OBJ, dtype=np.float32)))
    return [plus, ring, cross]


def _distractor(rng: np.random.Generator) -> np.ndarray:
    """Clutter that shares parts with the objects: bars, diagonals, corners, squares, blobs."""
    kind = rng.integers(5)
    if kind == 0:  # straight bar (a part of a plus or a ring)
        n = int(rng.integers(3, 8))
        d = np.ones((1, n), np.float32)
        return d if rng.random() < 0.5 else d.T
    if kind == 1:  # diagonal (a part of an X)
        n = int(rng.integers(3, 6))
        d = np.eye(n, dtype=np.float32)
        return d if rng.random() < 0.5 else np.fliplr(d).copy()
    if kind == 2:  # corner (a part of a ring)
        n = int(rng.integers(3, 6))
        d = np.zeros((n, n), np.float32)
        d[0, :] = 1
        d[:, 0] = 1
        return np.rot90(d, int(rng.integers(4))).copy()
    if kind == 3:  # filled square
        n = int(rng.integers(2, 5))
        return np.ones((n, n), np.float32)
    yy, xx = np.mgrid[-3:4, -3:4]  # gaussian blob
    s = rng.uniform(0.8, 1.8)
    return np.exp(-(yy**2 + xx**2) / (2 * s * s)).astype(np.float32)


def _paste(img: np.ndarray, patch: np.ndarray, top: int, left: int, value: float) -> None:
    h, w = patch.shape
    region = img[top : top + h, left : left + w]
    np.maximum(region, value * patch[: region.shape[0], : region.shape[1]], out=region)


def make_dense(
    n_images: int = 900,
    *,
    size: int = 48,
    stride: int = 2,
    objects_per_image: float = 1.0,
    clutter_per_image: float = 8.0,
    seed: int = 0,
) -> Dataset:
    """The synthetic dense-prediction task (see the module docstring).

    Args:
        n_images: number of images.
        size: image side in pixels (a multiple of ``stride``).
        stride: pixels per anchor; labels have shape (size / stride, size / stride).
        objects_per_image: mean of the Poisson number of objects per image.
        clutter_per_image: mean of the Poisson number of distractors per image.
        seed: the generator's seed; the same seed gives the same data.

    Returns:
        A ``task="dense"`` :class:`Dataset` with 3 foreground classes (plus, ring, X):
        X (n_images, 1, size, size) float32, y (n_images, size / stride, size / stride) int64.

    Example:
        >>> ds = make_dense(8, seed=0)
        >>> ds.X.shape, ds.y.shape, ds.num_classes
        ((8, 1, 48, 48), (8, 24, 24), 3)
    """
    if n_images < 2:
        raise ValueError(f"n_images must be >= 2, got {n_images}")
    if size % stride or size < 4 * _OBJ:
        raise ValueError(f"size must be a multiple of stride and >= {4 * _OBJ}, got {size}")
    rng = np.random.default_rng(seed)
    templates = _templates()
    g = size // stride
    X = np.empty((n_images, 1, size, size), np.float32)
    Y = np.full((n_images, g, g), len(templates), np.int64)
    # smooth background: coarse noise upsampled bilinearly
    coarse = 6
    t = np.linspace(0, coarse - 1, size)
    i0 = np.floor(t).astype(int).clip(0, coarse - 2)
    f = (t - i0)[:, None]
    for n in range(n_images):
        c = rng.normal(0.0, 0.12, (coarse, coarse))
        rows = c[i0] * (1 - f) + c[i0 + 1] * f  # (size, coarse)
        bg = rows[:, i0] * (1 - f.T) + rows[:, i0 + 1] * f.T
        img = (0.2 + bg).astype(np.float32)
        for _ in range(rng.poisson(clutter_per_image)):
            d = _distractor(rng)
            top = int(rng.integers(0, size - d.shape[0] + 1))
            left = int(rng.integers(0, size - d.shape[1] + 1))
            _paste(img, d, top, left, float(rng.uniform(0.5, 1.0)))
        centres: list[tuple[int, int]] = []
        for _ in range(rng.poisson(objects_per_image)):
            for _attempt in range(20):
                cy, cx = (int(v) for v in rng.integers(_OBJ // 2 + 1, size - _OBJ // 2 - 1, 2))
                if all(max(abs(cy - a), abs(cx - b)) >= 2 * _OBJ for a, b in centres):
                    break
            else:
                continue
            cls = int(rng.integers(len(templates)))
            _paste(img, templates[cls], cy - _OBJ // 2, cx - _OBJ // 2, float(rng.uniform(0.5, 1.0)))
            centres.append((cy, cx))
            Y[n, cy // stride, cx // stride] = cls
        img += rng.normal(0.0, 0.08, img.shape).astype(np.float32)
        X[n, 0] = img
    return Dataset(
        name="dense",
        task="dense",
        X=X,
        y=Y,
        num_classes=len(templates),
        rare_classes=list(range(len(templates))),
        class_names=["plus", "ring", "x"],
        stride=stride,
        description=(
            f"synthetic dense prediction: {n_images} cluttered {size}x{size} images, "
            f"{g}x{g} anchors each, {len(templates)} object classes; "
            f"{(Y < len(templates)).mean() * 1000:.2f} foreground anchors per 1000"
        ),
    )


# ----------------------------------------------------------------------------- digits (bundled)

DIGITS_RARE = (3, 8)


def make_digits(*, rare_fraction: float = 0.015, seed: int = 0) -> Dataset:
    """scikit-learn's handwritten digits with digits 3 and 8 kept at ``rare_fraction`` each.

    The other eight digits are untouched (about 180 images each); each rare digit keeps
    ``round(rare_fraction * n / (1 - 2 * rare_fraction))`` randomly chosen images (22 for 1.5 %),
    so it makes up ``rare_fraction`` of the result. Features are pixel intensities / 16:
    X (n, 64) float32, y (n,) int64.

    Example:
        >>> ds = make_digits()
        >>> ds.X.shape, int((ds.y == 3).sum())
        ((1484, 64), 22)
    """
    from sklearn.datasets import load_digits

    if not 0.0 < rare_fraction < 0.5:
        raise ValueError(f"rare_fraction must be in (0, 0.5), got {rare_fraction}")
    d = load_digits()
    X = d.data.astype(np.float32) / 16.0
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    common = np.flatnonzero(~np.isin(y, DIGITS_RARE))
    keep_n = max(2, round(rare_fraction * len(common) / (1 - len(DIGITS_RARE) * rare_fraction)))
    keep = [common]
    for c in DIGITS_RARE:
        keep.append(np.sort(rng.choice(np.flatnonzero(y == c), keep_n, replace=False)))
    idx = np.sort(np.concatenate(keep))
    return Dataset(
        name="digits",
        task="multiclass",
        X=X[idx],
        y=y[idx],
        num_classes=10,
        rare_classes=list(DIGITS_RARE),
        class_names=[str(c) for c in range(10)],
        description=(
            f"scikit-learn digits, {len(idx)} 8x8 images, 10 classes; digits 3 and 8 kept at "
            f"{keep_n} images each ({100 * keep_n / len(idx):.1f} %)"
        ),
    )


# ----------------------------------------------------------------------------- user files


def _rare_of(counts: np.ndarray) -> list[int]:
    """Classes with fewer than half the examples of a uniform share; at least the smallest one."""
    share = counts.sum() / len(counts)
    rare = [int(c) for c in np.flatnonzero(counts < 0.5 * share)]
    return rare or [int(np.argmin(counts))]


def _finish_table(name: str, X: np.ndarray, labels: list, target: str) -> Dataset:
    """Encode labels, check classes, choose the task and the rare classes."""
    uniq = sorted(set(labels), key=lambda v: (isinstance(v, str), v))
    if len(uniq) < 2:
        raise DataError(
            f"{name}: the target column {target!r} has a single class ({uniq[0]!r}); "
            "comparing losses needs at least two classes"
        )
    code = {v: i for i, v in enumerate(uniq)}
    y = np.array([code[v] for v in labels], np.int64)
    counts = np.bincount(y, minlength=len(uniq))
    few = [str(uniq[i]) for i in np.flatnonzero(counts < 2)]
    if few:
        raise DataError(
            f"{name}: class(es) {', '.join(few)} of {target!r} have a single example; each class "
            "needs at least two (one to train on, one to test on)"
        )
    names = [_fmt_label(v) for v in uniq]
    if len(uniq) == 2:
        pos = int(np.argmin(counts)) if counts[0] != counts[1] else 1
        if pos == 0:  # the positive (logit) class is the rarer one
            y = 1 - y
            names = names[::-1]
        return Dataset(
            name=name,
            task="binary",
            X=X,
            y=y,
            num_classes=2,
            rare_classes=[1],
            class_names=names,
            description=(
                f"{name}: {len(y)} rows, {X.shape[1]} features, binary target {target!r}; "
                f"positive class {names[1]!r} is {100 * y.mean():.2f} %"
            ),
        )
    rare = _rare_of(counts)
    return Dataset(
        name=name,
        task="multiclass",
        X=X,
        y=y,
        num_classes=len(uniq),
        rare_classes=rare,
        class_names=names,
        description=(
            f"{name}: {len(y)} rows, {X.shape[1]} features, {len(uniq)} classes in {target!r}; "
            f"rare: {', '.join(names[c] for c in rare)}"
        ),
    )


def _fmt_label(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _parse_label(raw: str) -> object:
    s = raw.strip()
    try:
        v = float(s)
    except ValueError:
        return s
    if v.is_integer():
        return int(v)
    return v


def _load_csv(path: str, target: str | None) -> Dataset:
    name = os.path.basename(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            sample = fh.read(65536)
            fh.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            rows = [r for r in csv.reader(fh, dialect) if any(c.strip() for c in r)]
    except UnicodeDecodeError:
        raise DataError(f"{name}: not a UTF-8 text CSV file") from None
    if not rows:
        raise DataError(f"{name}: the file is empty")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise DataError(f"{name}: no data rows below the header")
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{name}: duplicate column name(s) {dup}")
    if target is None:
        target = "target" if "target" in header else header[-1]
    if target not in header:
        raise DataError(
            f"{name}: no column {target!r} (the --target); columns are: {', '.join(header)}"
        )
    if len(header) < 2:
        raise DataError(f"{name}: need at least one feature column besides the target {target!r}")
    t = header.index(target)
    feats = [h for i, h in enumerate(header) if i != t]
    X = np.empty((len(body), len(feats)), np.float64)
    labels: list = []
    for r, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"{name}: row {r} has {len(row)} fields, the header has {len(header)}")
        raw_t = row[t].strip()
        if raw_t == "" or raw_t.lower() in ("nan", "na", "null", "none"):
            raise DataError(f"{name}: missing target value (row {r}, column {target!r})")
        labels.append(_parse_label(raw_t))
        j = 0
        for i, cell in enumerate(row):
            if i == t:
                continue
            s = cell.strip()
            try:
                v = float(s)
            except ValueError:
                if s == "":
                    raise DataError(
                        f"{name}: missing value in column {feats[j]!r} (row {r}); fill or drop it"
                    ) from None
                raise DataError(
                    f"{name}: column {feats[j]!r} is not numeric (row {r}: {s!r}); features must "
                    "be numbers (encode categories first)"
                ) from None
            if not math.isfinite(v):
                raise DataError(f"{name}: column {feats[j]!r} has {s!r} (row {r}); NaN/inf not allowed")
            X[r - 2, j] = v
            j += 1
    if any(isinstance(v, float) for v in labels):
        raise DataError(
            f"{name}: the target {target!r} has non-integer numbers; compare needs class labels "
            "(integers or strings), not a regression target"
        )
    return _finish_table(name, X.astype(np.float32), labels, target)


def _load_npz(path: str) -> Dataset:
    import zipfile

    name = os.path.basename(path)
    if not zipfile.is_zipfile(path):
        raise DataError(f"{name}: not a valid .npz file (save it with numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            missing = [k for k in ("X", "y") if k not in keys]
            if missing:
                raise DataError(
                    f"{name}: missing array(s) {missing}; the file must hold 'X' (n, d) and 'y' (n,)"
                    f" (it has: {', '.join(keys) or 'nothing'})"
                )
            X, y = z["X"], z["y"]
    except DataError:
        raise
    except ValueError as e:  # object arrays need pickle: refuse
        raise DataError(f"{name}: cannot read the arrays ({e}); save numeric arrays") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{name}: not a valid .npz file ({e})") from None
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise DataError(f"{name}: X must have shape (n, d), got {X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise DataError(f"{name}: X must be numeric, got dtype {X.dtype}")
    if y.ndim != 1:
        raise DataError(f"{name}: y must have shape (n,), got {y.shape}")
    if len(y) != len(X):
        raise DataError(f"{name}: X has {len(X)} rows but y has {len(y)}")
    if len(y) == 0:
        raise DataError(f"{name}: no rows")
    Xf = X.astype(np.float64)
    if not np.isfinite(Xf).all():
        r, c = np.argwhere(~np.isfinite(Xf))[0]
        raise DataError(f"{name}: X has NaN/inf (row {r}, column {c}); fill or drop it")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all():
            raise DataError(f"{name}: y has NaN/inf (row {int(np.argmin(np.isfinite(y)))})")
        if not np.all(y == np.round(y)):
            raise DataError(
                f"{name}: y has non-integer numbers; compare needs class labels, not a regression target"
            )
        labels = [int(v) for v in y]
    elif np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
        labels = [int(v) for v in y]
    elif y.dtype.kind in "US":
        labels = [str(v) for v in y]
    else:
        raise DataError(f"{name}: y must hold integer or string class labels, got dtype {y.dtype}")
    return _finish_table(name, Xf.astype(np.float32), labels, "y")


def load_table(path: str, *, target: str | None = None) -> Dataset:
    """Load a user's ``.csv`` or ``.npz`` file as a binary or multi-class :class:`Dataset`.

    CSV: a header row; ``target`` names the label column (default: ``"target"`` if present, else the
    last column); every other column is a numeric feature. NPZ: arrays ``X`` (n, d) and ``y`` (n,).
    Labels may be integers or strings. Two classes give ``task="binary"`` with the rarer class as
    the positive (class 1); more give ``"multiclass"`` whose rare classes are those with less than
    half a uniform share. Raises :class:`DataError` with a one-line reason for anything unusable
    (missing column, non-numeric feature, NaN, a single class, a class with one example).
    """
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file (built-in data: {', '.join(BUILTIN)})")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, expected a .csv or .npz file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        if target not in (None, "y"):
            raise DataError(f"{os.path.basename(path)}: --target does not apply to .npz files (uses 'y')")
        return _load_npz(path)
    if ext in (".csv", ".tsv", ".txt"):
        return _load_csv(path, target)
    raise DataError(f"{path}: unknown file type {ext!r}; use a .csv or .npz file")


def load_data(source: str = "dense", *, target: str | None = None, seed: int = 0) -> Dataset:
    """Load a built-in task (``"dense"``, ``"digits"``) or a ``.csv``/``.npz`` file.

    Args:
        source: ``"dense"``, ``"digits"`` or a file path.
        target: CSV label column (files only).
        seed: generation / subsampling seed of the built-in data (the same seed, the same data).

    Example:
        >>> from focalkit.tools.experiments.data import load_data
        >>> ds = load_data("digits")
        >>> ds.task, ds.num_classes, ds.rare_classes
        ('multiclass', 10, [3, 8])
    """
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a string or path, got {type(source).__name__}")
    source = os.fspath(source)
    if source == "dense":
        return make_dense(seed=seed)
    if source == "digits":
        return make_digits(seed=seed)
    return load_table(source, target=target)


# ----------------------------------------------------------------------------- splits


def _stratify(ds: Dataset) -> np.ndarray | None:
    if ds.task == "dense":
        return None
    return ds.y


def train_test_split(
    ds: Dataset, *, test_fraction: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Random split of example (image) indices, stratified by class for classification.

    Returns:
        ``(train_idx, test_idx)``, sorted int64 arrays that partition ``range(len(ds))``.

    Example:
        >>> tr, te = train_test_split(load_data("digits"), test_fraction=0.3, seed=0)
        >>> len(tr), len(te)
        (1038, 446)
    """
    from sklearn.model_selection import train_test_split as sk_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    idx = np.arange(len(ds))
    strat = _stratify(ds)
    if strat is not None:
        n_cls = len(np.unique(strat))
        n_test = math.ceil(test_fraction * len(idx))
        if n_test < n_cls or len(idx) - n_test < n_cls:
            raise DataError(
                f"{ds.name}: {len(idx)} examples are too few for a stratified {test_fraction:g} split "
                f"of {n_cls} classes"
            )
    tr, te = sk_split(idx, test_size=test_fraction, random_state=seed, stratify=strat)
    return np.sort(tr).astype(np.int64), np.sort(te).astype(np.int64)


def kfold(ds: Dataset, k: int = 5, *, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` shuffled folds (stratified for classification): a list of ``(train_idx, val_idx)``.

    Each example is in exactly one ``val_idx``.

    Example:
        >>> folds = kfold(load_data("digits"), 5, seed=0)
        >>> len(folds), sum(len(v) for _, v in folds)
        (5, 1484)
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"k must be an int >= 2, got {k!r}")
    strat = _stratify(ds)
    if strat is not None:
        smallest = int(min(c for c in np.bincount(strat) if c > 0))
        if smallest < k:
            raise DataError(f"{ds.name}: the smallest class has {smallest} examples, fewer than k={k} folds")
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        if len(ds) < k:
            raise DataError(f"{ds.name}: {len(ds)} examples are fewer than k={k} folds")
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    idx = np.arange(len(ds))
    return [
        (np.sort(tr).astype(np.int64), np.sort(va).astype(np.int64))
        for tr, va in splitter.split(idx, strat)
    ]
