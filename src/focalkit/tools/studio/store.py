"""The studio's history: datasets and runs in one SQLite file under the data directory.

``studio.db`` holds one row per uploaded dataset and one per run (its request, status, progress,
the equivalent command line, timestamps); a run's outputs (the ``focalkit compare`` JSON, the HTML
report, the trained weights, or the ``focalkit tune`` study) are files in ``runs/<id>/``. Every
write is one committed transaction, so killing the server loses nothing that was written; on the
next start :meth:`Store.recover` marks the runs that were queued or running then as
``interrupted`` (or ``done``, when the worker had written the result before the kill).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable

__all__ = ["Store", "STATUSES", "ACTIVE", "now"]

#: Every status a run can have; ACTIVE ones have a worker (running) or wait for one (queued).
STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    created TEXT NOT NULL,
    info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    dataset TEXT NOT NULL,
    label TEXT NOT NULL,
    request TEXT NOT NULL,
    command TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    summary TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    created TEXT NOT NULL,
    started TEXT,
    finished TEXT
);
"""
_JSON_FIELDS = ("info", "request", "progress", "summary")


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Store:
    """Thread-safe access to ``<data_dir>/studio.db`` (one connection, one lock).

    Example:
        >>> import tempfile
        >>> s = Store(tempfile.mkdtemp())
        >>> s.add_run("r1", kind="compare", dataset="digits", label="digits", request={}, command="focalkit compare digits")
        >>> s.get_run("r1")["status"]
        'queued'
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "studio.db"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ helpers
    def _exec(self, sql: str, args: tuple = ()) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [self._row(r) for r in rows]

    @staticmethod
    def _row(r: sqlite3.Row) -> dict[str, Any]:
        d = dict(r)
        for k in _JSON_FIELDS:
            if k in d and isinstance(d[k], str):
                d[k] = json.loads(d[k])
        return d

    # ------------------------------------------------------------------ datasets
    def add_dataset(self, id: str, *, name: str, path: str, size: int, info: dict[str, Any]) -> None:
        """Record an uploaded file (``path`` relative to the data directory)."""
        self._exec("INSERT INTO datasets (id, name, path, size, created, info) VALUES (?, ?, ?, ?, ?, ?)",
                   (id, name, path, size, now(), json.dumps(info)))

    def get_dataset(self, id: str) -> dict[str, Any] | None:
        rows = self._exec("SELECT * FROM datasets WHERE id = ?", (id,))
        return rows[0] if rows else None

    def list_datasets(self) -> list[dict[str, Any]]:
        return self._exec("SELECT * FROM datasets ORDER BY created DESC, rowid DESC")

    def delete_dataset(self, id: str) -> None:
        self._exec("DELETE FROM datasets WHERE id = ?", (id,))

    # ------------------------------------------------------------------ runs
    def add_run(self, id: str, *, kind: str, dataset: str, label: str, request: dict[str, Any],
                command: str) -> None:
        """Record a new run as ``queued``."""
        self._exec(
            "INSERT INTO runs (id, kind, status, dataset, label, request, command, created) "
            "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?)",
            (id, kind, dataset, label, json.dumps(request), command, now()),
        )

    def get_run(self, id: str) -> dict[str, Any] | None:
        rows = self._exec("SELECT * FROM runs WHERE id = ?", (id,))
        return rows[0] if rows else None

    def list_runs(self) -> list[dict[str, Any]]:
        return self._exec("SELECT * FROM runs ORDER BY created DESC, rowid DESC")

    def update_run(self, id: str, **fields: Any) -> None:
        """Set columns of one run (dicts are stored as JSON)."""
        if not fields:
            return
        bad = set(fields) - {"status", "progress", "summary", "error", "started", "finished"}
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {fields['status']!r}")
        cols = ", ".join(f"{k} = ?" for k in fields)
        vals = tuple(json.dumps(v) if k in _JSON_FIELDS else v for k, v in fields.items())
        self._exec(f"UPDATE runs SET {cols} WHERE id = ?", vals + (id,))

    def delete_run(self, id: str) -> None:
        self._exec("DELETE FROM runs WHERE id = ?", (id,))

    def recover(self, finished: Callable[[dict[str, Any]], dict[str, Any] | None]) -> list[str]:
        """After a restart: settle the runs that were ``queued`` or ``running`` when the server stopped.

        ``finished(run)`` returns the run's summary if its worker wrote a complete result before
        the server died (the run is then ``done``), else None (the run becomes ``interrupted``).
        Returns the ids of the runs it changed.
        """
        changed = []
        for run in self._exec("SELECT * FROM runs WHERE status IN ('queued', 'running')"):
            summary = finished(run) if run["status"] == "running" else None
            if summary is not None:
                self.update_run(run["id"], status="done", summary=summary, finished=now(), error=None)
            else:
                what = "running" if run["status"] == "running" else "waiting in the queue"
                self.update_run(run["id"], status="interrupted", finished=now(),
                                error=f"the studio server stopped while this run was {what}; run it again")
            changed.append(run["id"])
        return changed
