"""Helpers of the studio tests: a real server (uvicorn on a free loopback port) and small data.

A module of its own, not conftest.py: two conftest modules of the suite would share that name.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the studio needs the 'studio' extra (pip install 'focalkit[studio]')")
pytest.importorskip("uvicorn", reason="the studio needs the 'studio' extra (pip install 'focalkit[studio]')")
pytest.importorskip("multipart", reason="the studio needs python-multipart (pip install 'focalkit[studio]')")
httpx = pytest.importorskip("httpx", reason="the studio tests need httpx (pip install 'focalkit[dev]')")


def write_csv(path: Path, n: int = 300, seed: int = 0) -> Path:
    """A small imbalanced binary table: 4 numeric features and a string label column (about 9 % 'yes')."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=n) > 1.6
    lines = ["a,b,c,d,label"] + [",".join(f"{v:.4f}" for v in r) + ("," + ("yes" if t else "no")) for r, t in zip(X, y)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Server:
    """A studio app served by uvicorn in a thread; ``client`` talks to it over HTTP."""

    def __init__(self, data_dir: Path, **kwargs) -> None:
        import uvicorn

        from focalkit.tools.studio.app import create_app

        self.data_dir = data_dir
        self.app = create_app(data_dir, **kwargs)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the studio server did not start")
            time.sleep(0.05)
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def wait(self, run_id: str, statuses=("done", "failed", "cancelled", "interrupted"), timeout: float = 120) -> dict:
        """Poll GET /api/runs/{id} until its status is one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.client.get(f"/api/runs/{run_id}").json()
            if run["status"] in statuses:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {run['status']} after {timeout} s: {run.get('progress')}")
            time.sleep(0.2)

    def close(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(30)


