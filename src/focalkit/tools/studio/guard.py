"""The studio's safety checks, in one ASGI middleware, and the data directory's lock.

* **Loopback by default.** Without a token the server answers only requests whose ``Host`` is a
  loopback name (``127.0.0.1``, ``localhost``, ``[::1]``): a web page elsewhere cannot reach it
  through DNS rebinding.
* **A token on any other host.** ``focalkit studio --host 0.0.0.0`` prints a URL with a random
  token (as Jupyter does); every request must carry it: ``?token=...`` (the page's first visit,
  which also sets an HttpOnly cookie for the page's own requests), the cookie, or an
  ``Authorization: token ...`` (or ``Bearer``) header.
* **Same origin for changes.** A POST or DELETE whose ``Origin`` is another site is refused, so
  another page open in the browser cannot start, cancel or delete runs.
* **Upload size.** A request to ``POST /api/datasets`` larger than the limit is refused with 413
  before its body is read when it declares its length, and as soon as it passes the limit
  otherwise.
"""

from __future__ import annotations

import json
import os
import secrets
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

__all__ = ["Guard", "RequestTooLarge", "lock_data_dir", "COOKIE", "LOOPBACK"]

COOKIE = "focalkit_studio_token"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_SLACK = 64 * 1024  # multipart headers and boundaries around the file


class RequestTooLarge(Exception):
    """The request body passed the upload limit while it was being read."""


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _mb(n: int) -> str:
    return f"{n / 2**20:g} MB"


class Guard:
    """ASGI middleware: Host, token, Origin and upload-size checks (see the module docstring)."""

    def __init__(self, app: Any, token: str | None = None, max_upload: int = 50 * 2**20) -> None:
        self.app = app
        self.token = token
        self.max_upload = max_upload

    async def _refuse(self, send: Any, status: int, message: str) -> None:
        body = json.dumps({"detail": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        method = scope.get("method", "GET")
        if self.token is None and _hostname(host) not in LOOPBACK:
            return await self._refuse(send, 403, f"host {host!r} refused: this studio serves 127.0.0.1 only "
                                      "(start it with --host and use the token it prints to serve other hosts)")
        set_cookie = False
        if self.token is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = query.get("token", [None])[0]
            if given is not None and secrets.compare_digest(given, self.token):
                set_cookie = True
            else:
                auth = headers.get("authorization", "")
                scheme, _, value = auth.partition(" ")
                cookie = SimpleCookie()
                try:
                    cookie.load(headers.get("cookie", ""))
                except Exception:
                    pass
                ok = (scheme.lower() in ("token", "bearer") and secrets.compare_digest(value.strip(), self.token)) or (
                    COOKIE in cookie and secrets.compare_digest(cookie[COOKIE].value, self.token))
                if not ok:
                    return await self._refuse(send, 401, "missing or wrong token: open the URL that focalkit studio "
                                              "printed when it started (it ends in ?token=...)")
        if method not in ("GET", "HEAD", "OPTIONS"):
            origin = headers.get("origin")
            if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
                return await self._refuse(send, 403, f"cross-origin request from {origin!r} refused")
        if method == "POST" and scope.get("path") == "/api/datasets":
            limit = self.max_upload + _SLACK
            try:
                declared = int(headers.get("content-length", "0"))
            except ValueError:
                declared = 0
            if declared > limit:
                return await self._refuse(send, 413, f"the upload is larger than the limit of {_mb(self.max_upload)} "
                                          "(focalkit studio --max-upload-mb raises it)")
            seen = 0

            async def counted() -> dict:
                nonlocal seen
                msg = await receive()
                if msg.get("type") == "http.request":
                    seen += len(msg.get("body", b""))
                    if seen > limit:
                        raise RequestTooLarge(f"the upload is larger than the limit of {_mb(self.max_upload)} "
                                              "(focalkit studio --max-upload-mb raises it)")
                return msg

            receive_ = counted
        else:
            receive_ = receive
        if not set_cookie:
            return await self.app(scope, receive_, send)

        async def send_with_cookie(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                value = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                msg = dict(msg, headers=list(msg.get("headers", [])) + [(b"set-cookie", value.encode("latin-1"))])
            await send(msg)

        return await self.app(scope, receive_, send_with_cookie)


class _Lock:
    def __init__(self, fh: Any) -> None:
        self._fh = fh

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def lock_data_dir(data_dir: Path) -> _Lock:
    """Hold ``data_dir/studio.lock`` for this server's life: one studio per data directory.

    Raises RuntimeError when another server holds it.
    """
    fh = open(data_dir / "studio.lock", "a+")
    try:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # pragma: no cover - not POSIX: no lock
        return _Lock(fh)
    except OSError:
        fh.seek(0)
        other = fh.read().strip() or "?"
        fh.close()
        raise RuntimeError(f"another focalkit studio (pid {other}) uses the data directory {data_dir}; "
                           "stop it or choose another --data-dir") from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return _Lock(fh)
