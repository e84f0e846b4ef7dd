"""Make docs/studio.png: the studio after a comparison on the built-in digits, started from the page.

    PYTHONPATH=src python docs/studio_screenshot.py [docs/studio.png]

Starts a studio on a temporary data directory, drives headless Chromium (Debian's ``chromium``)
through the page as a user would (choose the data, the losses and gammas, Run), waits for the
result and saves a screenshot. Takes about a minute.
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path


def main(out: str = "docs/studio.png") -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from focalkit.tools.studio.app import create_app

    data = Path(tempfile.mkdtemp(prefix="focalkit-studio-shot-"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server = uvicorn.Server(uvicorn.Config(create_app(data), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.1)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=chromium, headless=True,
                                   args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            pg = b.new_page(viewport={"width": 1440, "height": 1560})
            pg.set_default_timeout(300_000)
            pg.goto(url)
            pg.wait_for_selector("body[data-ready='1']")
            pg.select_option("#dataset", "digits")
            pg.wait_for_selector("body[data-preview='ok']")
            pg.fill("#gammas", "1, 2")
            pg.fill("#seeds", "2")
            pg.fill("#epochs", "25")
            pg.click("#run")
            pg.wait_for_selector("#run-panel[data-status='done']")
            pg.wait_for_function("document.body.dataset.result === document.querySelector('#run-panel').dataset.id")
            pg.evaluate("window.scrollTo(0, 0)")
            pg.evaluate("document.querySelector('#report-details').open = false")
            pg.screenshot(path=out, full_page=False)
            b.close()
    finally:
        server.should_exit = True
        time.sleep(1)
        shutil.rmtree(data, ignore_errors=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
