"""Checks of output paths, made before a tool starts its work (not after an hour of training).

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> check_output_dir("--out", os.path.join(d, "new", "folder"))  # will be created: fine
    >>> open(os.path.join(d, "f"), "w").close()
    >>> check_output_dir("--save", os.path.join(d, "f"))
    Traceback (most recent call last):
    ...
    ValueError: --save ...: exists and is not a folder
"""

from __future__ import annotations

import os

__all__ = ["check_output_dir"]


def check_output_dir(name: str, path: str | os.PathLike[str]) -> None:
    """Raises ValueError (one line, naming ``name``) unless ``path`` is a writable folder or can be
    created as one: it must not be a file, and its nearest existing ancestor must be a writable
    folder."""
    p = os.path.abspath(os.fspath(path))
    if os.path.exists(p):
        if not os.path.isdir(p):
            raise ValueError(f"{name} {os.fspath(path)!r}: exists and is not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ValueError(f"{name} {os.fspath(path)!r}: the folder is not writable")
        return
    parent = os.path.dirname(p)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"{name} {os.fspath(path)!r}: cannot create it, {parent!r} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {os.fspath(path)!r}: cannot create it in {parent!r} (not writable)")
