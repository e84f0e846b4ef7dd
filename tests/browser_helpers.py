"""Headless Chromium for the browser tests (the playground, the studio): the system's Chromium
(Debian's ``chromium``, installed by ``.ci/run``) driven by playwright-python; never
``playwright install``. Imported as ``browser_helpers`` (tests/ is on sys.path via its conftest)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterator

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"]


def chromium() -> str | None:
    """The Chromium executable: $FOCALKIT_CHROMIUM, /usr/bin/chromium or one on PATH; None if missing."""
    for cand in (os.environ.get("FOCALKIT_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if cand and Path(cand).exists():
            return cand
    return None


def launch(sync_api: Any, executable: str) -> Iterator[Any]:
    """Yields a headless browser (for a module-scoped fixture); closed afterwards."""
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        yield b
        b.close()
