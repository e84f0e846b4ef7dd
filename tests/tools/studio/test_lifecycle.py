"""The studio as a command: start, token, one server per data directory, kill mid-run, restart.

These start ``python -m focalkit studio`` in a process of its own, as a user would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio_helpers import httpx, write_csv

pytestmark = pytest.mark.slow


def _start(data_dir: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """``focalkit studio --no-browser --port 0`` in a new process; returns it and its URL."""
    p = subprocess.Popen([sys.executable, "-m", "focalkit", "studio", "--no-browser", "--port", "0",
                          "--data-dir", str(data_dir), *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("focalkit studio: "):
        p.kill()
        raise AssertionError(f"no URL printed: {line!r} {p.stderr.read()}")
    url = line.split(": ", 1)[1].strip()
    base = url.split("?")[0].rstrip("/").replace("0.0.0.0", "127.0.0.1")
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/favicon.ico", timeout=2, params={"token": url.partition("token=")[2]} if "token=" in url else None)
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline and p.poll() is None, p.stderr.read()
            time.sleep(0.2)
    return p, url


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for child, parent in parents.items():
            if parent == p and child not in out:
                out.add(child)
                todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_focalkit_help_lists_studio_without_importing_the_web_stack() -> None:
    code = ("import sys, focalkit.tools.cli\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'uvicorn', 'starlette', 'multipart')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
    from typer.testing import CliRunner

    from focalkit.tools.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "studio" in r.output
    r = runner.invoke(app, ["studio", "--help"])
    assert r.exit_code == 0
    for opt in ("--host", "--port", "--data-dir", "--no-browser"):
        assert opt in r.output
    for args, words in ((["--port", "70000"], "--port must be in 0..65535"),
                        (["--max-upload-mb", "0"], "--max-upload-mb must be > 0"),
                        (["--workers", "0"], "--workers must be >= 1")):
        r = runner.invoke(app, ["studio", "--no-browser", *args])
        assert r.exit_code == 2 and words in r.output and "Traceback" not in r.output


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the worker processes")
def test_kill_mid_run_loses_no_finished_run_and_marks_the_running_one_interrupted(tmp_path) -> None:
    data = tmp_path / "studio"
    server, url = _start(data)
    c = httpx.Client(base_url=url.rstrip("/"), timeout=60)
    try:
        csv = write_csv(tmp_path / "t.csv")
        ds = c.post("/api/datasets", files={"file": ("t.csv", csv.read_bytes(), "text/csv")}).json()
        base = {"dataset": ds["id"], "target": "label", "losses": ["ce", "focal"], "gammas": [2.0], "seeds": 1}
        done = c.post("/api/runs", json=base | {"epochs": 2}).json()["id"]
        deadline = time.monotonic() + 120
        while c.get(f"/api/runs/{done}").json()["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        finished = c.get(f"/api/runs/{done}").json()
        long = c.post("/api/runs", json=base | {"epochs": 100000}).json()["id"]
        queued = c.post("/api/runs", json=base | {"epochs": 3}).json()["id"]
        while (c.get(f"/api/runs/{long}").json()["progress"].get("current") or {}).get("epoch", 0) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(1.5)  # the progress is saved at most once a second while epochs come
        family = _descendants(server.pid)
        assert family, "the run has no worker process"
        server.send_signal(signal.SIGKILL)
        server.wait(30)
        # the workers die with the server: no orphan keeps training
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in family):
            assert time.monotonic() < deadline, [p for p in family if _alive(p)]
            time.sleep(0.2)
    finally:
        c.close()
        if server.poll() is None:
            server.kill()
    server, url = _start(data)
    c = httpx.Client(base_url=url.rstrip("/"), timeout=60)
    try:
        runs = {r["id"]: r for r in c.get("/api/runs").json()}
        assert runs[done]["status"] == "done"
        again = c.get(f"/api/runs/{done}").json()
        assert again["result"] == finished["result"]
        assert c.get(f"/api/runs/{done}/report").status_code == 200
        assert c.get(f"/api/runs/{done}/weights").status_code == 200
        assert runs[long]["status"] == "interrupted"
        assert "stopped while this run was running" in runs[long]["error"]
        assert runs[queued]["status"] == "interrupted"
        assert c.get(f"/api/runs/{long}").json()["progress"]["curves"][0]["values"], "the progress before the kill is kept"
        assert c.delete(f"/api/runs/{long}").status_code == 200
    finally:
        c.close()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            server.kill()


def test_non_loopback_host_needs_the_printed_token(tmp_path) -> None:
    server, url = _start(tmp_path / "studio", "--host", "0.0.0.0")
    try:
        assert "?token=" in url
        token = url.split("?token=")[1]
        base = url.split("?")[0].rstrip("/").replace("0.0.0.0", "127.0.0.1")
        for path in ("/", "/api/runs", "/api/datasets", "/openapi.json", "/assets/studio.js"):
            r = httpx.get(base + path)
            assert r.status_code == 401 and "token" in r.json()["detail"], path
        assert httpx.get(base + "/api/runs", params={"token": "wrong"}).status_code == 401
        page = httpx.get(base + "/", params={"token": token})
        assert page.status_code == 200 and "focalkit studio" in page.text
        cookie = page.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        with httpx.Client(base_url=base) as c:  # the page's own requests carry the cookie
            c.cookies.set("focalkit_studio_token", token)
            assert c.get("/api/runs").status_code == 200
        assert httpx.get(base + "/api/runs", headers={"Authorization": f"token {token}"}).json() == []
        assert httpx.get(base + "/api/datasets", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)


def test_loopback_server_refuses_other_hosts_and_cross_origin_changes(tmp_path) -> None:
    from starlette.testclient import TestClient

    from focalkit.tools.studio.app import create_app

    app = create_app(tmp_path / "studio")
    with TestClient(app, base_url="http://127.0.0.1:8765") as c:
        assert c.get("/api/runs").status_code == 200
        r = c.get("/api/runs", headers={"host": "evil.example:8765"})  # DNS rebinding
        assert r.status_code == 403 and "refused" in r.json()["detail"]
        assert c.get("/api/runs", headers={"host": "localhost:8765"}).status_code == 200
        r = c.post("/api/runs", json={"dataset": "nope"}, headers={"origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-origin" in r.json()["detail"]
        r = c.post("/api/runs", json={"dataset": "nope"}, headers={"origin": "http://127.0.0.1:8765"})
        assert r.status_code == 404  # same origin: through to the API
    with pytest.raises(RuntimeError, match="another focalkit studio"):
        a = create_app(tmp_path / "other")
        create_app(tmp_path / "other")
    del a


def test_store_recovers_after_a_kill(tmp_path) -> None:
    from focalkit.tools.studio.store import Store

    s = Store(tmp_path)
    for rid, status in (("a", "running"), ("b", "running"), ("c", "queued"), ("d", "done"), ("e", "failed")):
        s.add_run(rid, kind="compare", dataset="dense", label=rid, request={}, command="focalkit compare")
        if status != "queued":
            s.update_run(rid, status=status)
    changed = s.recover(lambda run: {"headline": "x"} if run["id"] == "a" else None)
    assert sorted(changed) == ["a", "b", "c"]
    got = {r["id"]: r for r in s.list_runs()}
    assert got["a"]["status"] == "done" and got["a"]["summary"] == {"headline": "x"}
    assert got["b"]["status"] == "interrupted" and "running" in got["b"]["error"]
    assert got["c"]["status"] == "interrupted" and "queue" in got["c"]["error"]
    assert got["d"]["status"] == "done" and got["e"]["status"] == "failed"
    with pytest.raises(ValueError, match="status must be one of"):
        s.update_run("a", status="exploded")
    with pytest.raises(ValueError, match="cannot update"):
        s.update_run("a", command="rm -rf /")
    s.close()
    assert [r["id"] for r in Store(tmp_path).list_runs()] == ["e", "d", "c", "b", "a"]


def test_clean_filename_and_progress_rule() -> None:
    from focalkit.tools.studio.datasets import clean_filename
    from focalkit.tools.studio.jobs import apply_event

    assert clean_filename("../../x.csv") == "x.csv"
    assert clean_filename("..") == "data" and clean_filename("") == "data"
    assert clean_filename("C:\\a\\b\\ü ö.csv") == "data.csv" and clean_filename(".hidden.csv") == "hidden.csv"
    assert clean_filename("/etc/passwd") == "passwd"
    p: dict = {}
    for ev in ({"type": "start", "losses": ["CE"], "seeds": [0, 1], "epochs": 2, "runs_total": 2, "description": "",
                "task": "binary", "device": "cpu", "notes": []},
               {"type": "run_start", "index": 0, "loss": "CE", "seed": 0},
               {"type": "epoch", "index": 0, "epoch": 1, "epochs": 2, "value": 0.5},
               {"type": "epoch", "index": 0, "epoch": 2, "epochs": 2, "value": 0.25},
               {"type": "run_start", "index": 1, "loss": "CE", "seed": 1}):
        apply_event(p, ev)
    assert p["runs_done"] == 1 and p["curves"] == [{"loss": "CE", "seed": 0, "values": [0.5, 0.25]},
                                                    {"loss": "CE", "seed": 1, "values": []}]
    json.dumps(p)
