"""The ``focalkit studio`` command (typer). The web stack is imported only when it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

__all__ = ["studio", "DEFAULT_DATA_DIR", "DEFAULT_PORT"]

DEFAULT_DATA_DIR = Path.home() / ".focalkit" / "studio"
DEFAULT_PORT = 8765


def studio(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on. Any host other than loopback requires the token printed at start."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port (0: any free port)."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="Folder for the history (SQLite), the uploads and the runs' outputs."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser."),
    max_upload_mb: float = typer.Option(50.0, "--max-upload-mb", help="Largest accepted upload, in MB."),
    workers: int = typer.Option(1, "--workers", "-j", help="Runs executed at the same time (the others wait in the queue)."),
) -> None:
    """Start the studio: a local web page to compare and tune focal loss on your data, no code.

    Runs train in worker processes, one at a time by default; the history is kept in DATA_DIR
    across restarts. Ctrl-C stops the server (a running run is marked interrupted).
    """
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart)
        import uvicorn
    except ImportError as e:
        err.print(f"[red]error:[/red] focalkit studio needs the 'studio' extra ({e.name} is missing): "
                  "pip install 'focalkit[studio]'")
        raise typer.Exit(2) from None
    if not 0 <= port <= 65535:
        err.print(f"[red]error:[/red] --port must be in 0..65535, got {port}")
        raise typer.Exit(2)
    if not max_upload_mb > 0:
        err.print(f"[red]error:[/red] --max-upload-mb must be > 0, got {max_upload_mb}")
        raise typer.Exit(2)
    if workers < 1:
        err.print(f"[red]error:[/red] --workers must be >= 1, got {workers}")
        raise typer.Exit(2)

    import secrets
    import socket

    from focalkit.tools.studio.app import create_app
    from focalkit.tools.studio.guard import LOOPBACK

    loopback = host in LOOPBACK
    token = None if loopback else secrets.token_urlsafe(24)
    try:
        app = create_app(data_dir, token=token, max_upload=int(max_upload_mb * 2**20), concurrency=workers)
    except (RuntimeError, OSError) as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        err.print(f"[red]error:[/red] cannot serve on {host}:{port}: {e.strerror or e} "
                  "(another program uses the port? try --port 0)")
        raise typer.Exit(2) from None
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    print(f"focalkit studio: {url}", flush=True)
    print(f"  data: {Path(data_dir).resolve()}   API: http://{shown}:{port}/openapi.json   Ctrl-C stops",
          flush=True)
    if token:
        print("  not loopback: every request needs the token above (keep it secret)", flush=True)
    if not no_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, lambda: webbrowser.open(url.replace("0.0.0.0", "127.0.0.1"))).start()
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
