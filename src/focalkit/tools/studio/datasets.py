"""Data for the studio: the built-in sets and uploaded files, their previews.

An upload is stored as ``uploads/<generated id>/<cleaned name>`` inside the data directory: the
directory name is generated and the file name keeps only letters, digits, ``.``, ``-`` and ``_``
of the uploaded name's last component, so no name (``../../x.csv``, ``/etc/passwd``, ``C:\\x``)
can place a file anywhere else. The cleaned name is what ``focalkit compare`` shows as the
dataset's name. Files are read by :func:`focalkit.tools.experiments.data.load_data`, exactly as
the command line reads them.
"""

from __future__ import annotations

import csv
import os
import re
import secrets
import shutil
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

from focalkit.tools.experiments.data import BUILTIN, DataError

__all__ = [
    "ALLOWED_SUFFIXES",
    "BUILTIN",
    "UploadTooLarge",
    "clean_filename",
    "csv_columns_and_rows",
    "dataset_source",
    "preview",
    "save_upload",
]

ALLOWED_SUFFIXES = (".csv", ".tsv", ".txt", ".npz")
_BAD = re.compile(r"[^A-Za-z0-9._-]+")


class UploadTooLarge(Exception):
    """An upload over the size limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload is larger than the limit of {_mb(limit)} "
                         "(focalkit studio --max-upload-mb raises it)")
        self.limit = limit


def _mb(n: int) -> str:
    return f"{n / 2**20:g} MB"


def clean_filename(name: str) -> str:
    """The last path component of ``name`` with only ``[A-Za-z0-9._-]`` kept (others become ``_``).

    Leading and trailing dots and underscores of the stem are dropped (no hidden files, no
    ``..``); an empty stem becomes ``data``; the suffix keeps its letters and digits.

    Example:
        >>> clean_filename("../../x.csv"), clean_filename("C:\\\\Users\\\\me\\\\my data (1).csv")
        ('x.csv', 'my_data_1.csv')
    """
    base = re.split(r"[\\/]", str(name))[-1].strip()
    stem, ext = os.path.splitext(base)
    if stem.startswith(".") and not ext:  # ".csv" alone is a stem to Python, a suffix here
        stem, ext = "", stem
    stem = _BAD.sub("_", stem).strip("._")[:100]
    ext = "." + re.sub(r"[^A-Za-z0-9]+", "", ext)[:10] if ext else ""
    return (stem or "data") + (ext if ext != "." else "")


def save_upload(data_dir: Path, filename: str, src: BinaryIO, limit: int) -> tuple[str, Path, int]:
    """Copy an uploaded file to ``uploads/<id>/<clean name>``; returns ``(id, path, size)``.

    Raises DataError for a file type ``focalkit compare`` cannot read and :class:`UploadTooLarge`
    past ``limit`` bytes (nothing is left behind in either case).
    """
    name = clean_filename(filename)
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise DataError(f"{name}: unknown file type {suffix or '(none)'!r}; use a .csv or .npz file")
    uid = "u" + secrets.token_hex(6)
    folder = (data_dir / "uploads" / uid).resolve()
    root = (data_dir / "uploads").resolve()
    if folder.parent != root:  # pragma: no cover - the id is generated
        raise DataError("bad upload folder")
    folder.mkdir(parents=True)
    path = folder / name
    size = 0
    try:
        with open(path, "xb") as out:
            while chunk := src.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge(limit)
                out.write(chunk)
        if size == 0:
            raise DataError(f"{name}: the file is empty")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return uid, path, size


def csv_columns_and_rows(path: Path) -> tuple[list[str], int]:
    """The header of a CSV file and its number of data rows, read as ``focalkit compare`` reads
    it (sniffed delimiter, blank lines skipped)."""
    name = path.name
    header: list[str] | None = None
    rows = 0
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            sample = fh.read(65536)
            fh.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            for row in csv.reader(fh, dialect):
                if not any(c.strip() for c in row):
                    continue
                if header is None:
                    header = [h.strip() for h in row]
                else:
                    rows += 1
    except UnicodeDecodeError:
        raise DataError(f"{name}: not a UTF-8 text CSV file") from None
    except csv.Error as e:
        raise DataError(f"{name}: not a readable CSV file ({e})") from None
    if header is None:
        raise DataError(f"{name}: the file is empty")
    if rows == 0:
        raise DataError(f"{name}: no data rows below the header")
    return header, rows


def dataset_source(record: dict[str, Any] | None, data_dir: Path, dataset_id: str) -> str:
    """What ``focalkit compare`` takes as DATA for a dataset id: a built-in name or a file path."""
    if dataset_id in BUILTIN:
        return dataset_id
    if record is None:
        raise KeyError(dataset_id)
    return str((data_dir / record["path"]).resolve())


_CACHE: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def preview(source: str, *, target: str | None = None, data_seed: int = 0) -> dict[str, Any]:
    """What the page shows of a dataset with a target: rows, task, class counts, imbalance ratio.

    ``class_counts`` maps class names to examples (anchors for ``dense``, whose background is
    listed as ``"background"``); ``imbalance_ratio`` is the largest count over the smallest.
    Raises DataError (the command line's message) when the data cannot be used with ``target``.
    Results are cached per (source, file time, target, data seed).
    """
    import numpy as np

    from focalkit.tools.experiments.data import class_counts, load_data
    from focalkit.tools.experiments.models import model_signature

    stamp = os.path.getmtime(source) if source not in BUILTIN else 0.0
    key = (source, stamp, target, data_seed)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return dict(_CACHE[key])
    ds = load_data(source, target=target, seed=data_seed)
    counts = {ds.class_names[c]: int(n) for c, n in enumerate(class_counts(ds))}
    if ds.task == "dense":
        counts["background"] = int(np.sum(ds.y == ds.num_classes))
    present = [n for n in counts.values() if n > 0]
    info = {
        "rows": len(ds),
        "task": ds.task,
        "num_classes": ds.num_classes,
        "class_counts": counts,
        "rare_classes": [ds.class_names[c] for c in ds.rare_classes],
        "imbalance_ratio": max(present) / min(present),
        "description": ds.description,
        "model": model_signature(ds),
    }
    with _CACHE_LOCK:
        _CACHE[key] = info
        while len(_CACHE) > 32:
            _CACHE.popitem(last=False)
    return dict(info)
