"""The studio's JSON API through HTTP against the real app (uvicorn on a free loopback port).

Runs are tiny (300 rows, a few epochs, one seed); one of them is checked number for number
against the ``focalkit compare`` command that the studio records for it.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from studio_helpers import write_csv

pytestmark = pytest.mark.slow

METRICS = ("ap", "f1", "balanced_accuracy", "ece", "brier")


def _upload(server, path: Path, name: str | None = None) -> dict:
    with open(path, "rb") as fh:
        r = server.client.post("/api/datasets", files={"file": (name or path.name, fh, "text/csv")})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def dataset(server, csv_file) -> dict:
    return _upload(server, csv_file)


def _events(server, run_id: str, timeout: float = 120) -> list[tuple[str, dict]]:
    """Every server-sent event of a run until ``end``."""
    out = []
    with server.client.stream("GET", f"/api/runs/{run_id}/events", timeout=timeout) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                out.append((kind, json.loads(line[len("data: "):])))
                if kind == "end":
                    break
    return out


# ---------------------------------------------------------------------------------- page, API doc


def test_page_and_assets_are_served_self_contained(server) -> None:
    page = server.client.get("/")
    assert page.status_code == 200 and "focalkit studio" in page.text
    for name in ("studio.js", "studio.css"):
        r = server.client.get(f"/assets/{name}")
        assert r.status_code == 200 and len(r.text) > 1000
        # no CDN, no external resource: every URL the page loads is this server's
        for text in (page.text, r.text):
            for scheme in ("http://", "https://", "//cdn", "@import"):
                assert scheme not in text.replace('xmlns="http://www.w3.org/2000/svg"', ""), (name, scheme)
    pg = server.client.get("/playground", params={"gamma": 1.5, "alpha": 0.5})
    assert pg.status_code == 200 and '"gamma": 1.5' in pg.text
    assert server.client.get("/playground", params={"gamma": -1}).status_code == 400
    assert server.client.get("/assets/../app.py").status_code == 404


def test_openapi_lists_the_endpoints_of_the_issue(server) -> None:
    doc = server.client.get("/openapi.json").json()
    paths = doc["paths"]
    assert set(paths["/api/datasets"]) >= {"get", "post"}
    assert set(paths["/api/runs"]) >= {"get", "post"}
    assert set(paths["/api/runs/{run_id}"]) >= {"get", "delete"}
    assert "get" in paths["/api/runs/{run_id}/events"]
    assert "post" in paths["/api/runs/{run_id}/cancel"]
    body = paths["/api/datasets"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body
    assert "RunRequest" in json.dumps(paths["/api/runs"]["post"])


# ---------------------------------------------------------------------------------- datasets


def test_datasets_list_builtins_and_preview(server) -> None:
    ids = [d["id"] for d in server.client.get("/api/datasets").json()]
    assert ids[:2] == ["dense", "digits"]
    p = server.client.get("/api/datasets/digits").json()
    assert p["rows"] == 1484 and p["task"] == "multiclass"
    assert p["class_counts"]["3"] == p["class_counts"]["8"] == 22
    assert p["imbalance_ratio"] == pytest.approx(max(p["class_counts"].values()) / 22)
    assert p["rare_classes"] == ["3", "8"]


def test_upload_reports_rows_columns_and_class_counts(server, dataset, csv_file) -> None:
    assert dataset["name"] == "small.csv"
    assert dataset["rows"] == 300
    assert dataset["columns"] == ["a", "b", "c", "d", "label"]
    counts = dataset["class_counts"]
    lines = csv_file.read_text().splitlines()[1:]
    assert counts == {"no": sum(ln.endswith(",no") for ln in lines), "yes": sum(ln.endswith(",yes") for ln in lines)}
    assert dataset["imbalance_ratio"] == pytest.approx(counts["no"] / counts["yes"])
    assert dataset["task"] == "binary" and dataset["target"] == "label"
    listed = {d["id"]: d for d in server.client.get("/api/datasets").json()}
    assert listed[dataset["id"]]["rows"] == 300
    # another target: the command line's own message (here: 'label' is now a non-numeric feature)
    from focalkit.tools.experiments.data import DataError, load_data

    stored = next((server.data_dir / "uploads" / dataset["id"]).iterdir())
    with pytest.raises(DataError) as want:
        load_data(str(stored), target="a")
    r = server.client.get(f"/api/datasets/{dataset['id']}", params={"target": "a"})
    assert r.status_code == 400 and r.json()["detail"] == str(want.value)
    assert "column 'label' is not numeric" in r.json()["detail"]


def test_upload_names_cannot_escape_the_data_directory(server, csv_file) -> None:
    for evil in ("../../x.csv", "/etc/passwd.csv", "..\\..\\win.csv", ".hidden.csv", "a/../../b c.csv"):
        d = _upload(server, csv_file, name=evil)
        stored = [p for p in (server.data_dir / "uploads" / d["id"]).iterdir()]
        assert len(stored) == 1
        path = stored[0].resolve()
        assert path.is_relative_to((server.data_dir / "uploads").resolve())
        assert ".." not in path.name and not path.name.startswith(".") and "/" not in d["name"]
    assert not (server.data_dir.parent / "x.csv").exists()


@pytest.mark.parametrize("name,content,status,words", [
    ("x.xlsx", b"a,b\n1,2\n", 400, "unknown file type '.xlsx'"),
    ("empty.csv", b"", 400, "the file is empty"),
    ("bin.csv", b"\xff\xfe\x00\x81garbage", 400, "not a UTF-8 text CSV file"),
    ("head.csv", b"a,b,target\n", 400, "no data rows below the header"),
    ("one.csv", b"target\n1\n2\n", 400, "at least one feature column"),
    ("bad.npz", b"not a zip", 400, "not a valid .npz file"),
])
def test_bad_uploads_get_one_clear_line(server, name, content, status, words) -> None:
    r = server.client.post("/api/datasets", files={"file": (name, content, "application/octet-stream")})
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert words in detail and "Traceback" not in detail and "\n" not in detail
    r = server.client.post("/api/datasets", data={"x": "1"})
    assert r.status_code in (400, 415)


def test_upload_size_limit(tmp_path) -> None:
    from studio_helpers import Server

    s = Server(tmp_path / "small-limit", max_upload=2000)
    try:
        big = write_csv(tmp_path / "big.csv", n=200)
        r = s.client.post("/api/datasets", files={"file": ("big.csv", big.read_bytes(), "text/csv")})
        assert r.status_code == 413
        assert "larger than the limit of" in r.json()["detail"] and "--max-upload-mb" in r.json()["detail"]
        # without Content-Length (chunked): refused while streaming, nothing left behind
        def chunks():
            yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n\r\n"
            for _ in range(200):
                yield b"1,2,3\n" * 100
            yield b"\r\n--b--\r\n"
        r = s.client.post("/api/datasets", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
        assert r.status_code == 413, r.text
        assert not any((tmp_path / "small-limit" / "uploads").glob("*/*")) if (tmp_path / "small-limit" / "uploads").exists() else True
        ok = write_csv(tmp_path / "ok.csv", n=20)
        assert s.client.post("/api/datasets", files={"file": ("ok.csv", ok.read_bytes(), "text/csv")}).status_code == 201
    finally:
        s.close()


# ---------------------------------------------------------------------------------- bad runs


@pytest.mark.parametrize("patch,status,words", [
    ({"dataset": "nope"}, 404, "no dataset 'nope'"),
    ({"target": "nope"}, 400, "no column 'nope'"),
    ({"losses": ["bogus"]}, 400, "losses must be a non-empty list of"),
    ({"losses": []}, 400, "losses must be a non-empty list of"),
    ({"gammas": [-1.0]}, 400, "must be"),
    ({"seeds": 0}, 422, "seeds: Input should be greater than or equal to 1"),
    ({"seeds": "many"}, 422, "seeds: Input should be a valid integer"),
    ({"epochs": 0}, 422, "epochs: Input should be greater than or equal to 1"),
    ({"prior": 2.0}, 400, "prior must be 'auto' or a probability in (0, 1)"),
    ({"alpha": "lots"}, 400, "alpha must be 'auto', 'off' or comma-separated numbers"),
    ({"balanced_alpha": "off"}, 400, "balanced_alpha off is plain cross-entropy"),
    ({"alpha_method": "magic"}, 400, "alpha_method must be"),
    ({"backend": "warp"}, 400, "backend:"),
    ({"device": "tpu"}, 400, "device must be auto, cpu, cuda or cuda:N"),
    ({"test_fraction": 1.5}, 400, "test_fraction must be in (0, 1)"),
    ({"surprise": 1}, 422, "surprise: Extra inputs are not permitted"),
    ({"kind": "train"}, 422, "kind: Input should be 'compare' or 'tune'"),
    ({"model": "forest"}, 400, "model must be one of"),
    ({"model": "lightgbm", "epochs": 3}, 400, "--epochs sets the net's training; boosting takes --rounds"),
    ({"epochs": None, "rounds": 5}, 400, "--rounds sets boosting rounds"),
    ({"dataset": "dense", "target": None, "model": "lightgbm", "epochs": None}, 400, "gradient boosting takes tabular data"),
    ({"kind": "tune", "metric": "brier"}, 400, "metric must be one of"),
    ({"kind": "tune", "folds": 1}, 422, "folds: Input should be greater than or equal to 2"),
    ({"kind": "tune", "folds": 50}, 400, "fewer than k=50 folds"),
    ({"kind": "tune", "gamma_min": 3, "gamma_max": 1}, 400, "gamma_range must satisfy"),
])
def test_bad_run_requests_get_a_4xx_with_one_line(server, dataset, patch, status, words) -> None:
    body = {"dataset": dataset["id"], "target": "label", "losses": ["ce", "focal"], "gammas": [2.0],
            "seeds": 1, "epochs": 1} | patch
    r = server.client.post("/api/runs", json=body)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert words in detail, detail
    assert "Traceback" not in detail and "\n" not in detail


def test_more_bad_requests(server, dataset) -> None:
    c = server.client
    r = c.post("/api/runs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]
    r = c.post("/api/runs", json={"dataset": "digits", "alpha": 0.25, "losses": ["focal"], "gammas": [2], "seeds": 1, "epochs": 1})
    assert r.status_code == 400 and "a single alpha is a sigmoid (binary) weight" in r.json()["detail"]
    assert c.get("/api/runs/ffffffffffff").status_code == 404
    assert c.get("/api/runs/ffffffffffff").json()["detail"] == "no run 'ffffffffffff'"
    assert c.post("/api/runs/ffffffffffff/cancel").status_code == 404
    assert c.delete("/api/runs/ffffffffffff").status_code == 404
    assert c.get("/api/datasets/nope").status_code == 404
    assert c.delete("/api/datasets/dense").status_code == 400
    assert c.get("/api/nothing").status_code == 404


# ---------------------------------------------------------------------------------- a run


@pytest.fixture(scope="module")
def done_run(server, dataset) -> tuple[dict, list]:
    body = {"dataset": dataset["id"], "target": "label", "losses": ["ce", "balanced_ce", "focal"],
            "gammas": [1.0, 2.0], "seeds": 2, "epochs": 4}
    r = server.client.post("/api/runs", json=body)
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] in ("queued", "running") and run["kind"] == "compare"
    events = _events(server, run["id"])
    return server.wait(run["id"]), events


def test_run_streams_progress_per_loss_and_epoch(done_run) -> None:
    run, events = done_run
    kinds = [k for k, _ in events]
    assert kinds[0] == "snapshot" and kinds[-1] == "end"
    assert events[-1][1]["status"] == "done"
    starts = [e for k, e in events if k == "run_start"]
    epochs = [e for k, e in events if k == "epoch"]
    assert [(s["loss"], s["seed"]) for s in starts] == [(n, s) for s in (0, 1) for n in ("CE", "balanced CE", "focal γ=1", "focal γ=2")]
    assert len(epochs) == 8 * 4 and all(e["epochs"] == 4 for e in epochs)
    # the live values are the training-loss curves of the result, in order
    for i, r in enumerate(run["result"]["runs"]):
        assert [e["value"] for e in epochs if e["index"] == i] == r["loss_curve"]
    assert run["progress"]["runs_done"] == 8
    assert [len(c["values"]) for c in run["progress"]["curves"]] == [4] * 8


def test_run_result_is_the_compare_json_and_its_table(server, done_run) -> None:
    from focalkit.tools._format import format_metric

    run, _ = done_run
    res = run["result"]
    assert res["tool"] == "focalkit compare" and res["seeds"] == [0, 1]
    assert list(res["summary"]) == ["CE", "balanced CE", "focal γ=1", "focal γ=2"]
    assert run["summary"]["headline"] == res["headline"]
    rows = {r["loss"]: r for r in run["table"]["rows"]}
    for name, per in res["summary"].items():
        for cell in rows[name]["cells"]:
            m = cell["metric"]
            assert cell["text"] == f"{format_metric(m, per[m]['mean'])} ± {format_metric(m, per[m]['std'])}"
            assert cell["best"] == (res["verdicts"][m]["best"] == name)
    listed = {r["id"]: r for r in server.client.get("/api/runs").json()}
    assert listed[run["id"]]["status"] == "done" and "result" not in listed[run["id"]]


def test_run_gives_the_numbers_of_the_same_focalkit_compare_command(server, done_run, tmp_path) -> None:
    run, _ = done_run
    argv = shlex.split(run["command"])
    assert argv[:2] == ["focalkit", "compare"]
    out = tmp_path / "cli"
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "focalkit", "compare", *argv[2:], "--out", str(out), "--quiet", "--no-html"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    cli = json.loads((out / "small.json").read_text())
    mine = run["result"]
    assert [(x["loss"], x["seed"]) for x in cli["runs"]] == [(x["loss"], x["seed"]) for x in mine["runs"]]
    for a, b in zip(mine["runs"], cli["runs"]):
        for k in METRICS + ("loss_curve", "alpha", "prior", "per_class", "pr_curve", "reliability", "n_train", "n_test"):
            assert a[k] == b[k], (a["loss"], a["seed"], k)
    for name in cli["summary"]:
        for m in METRICS:
            assert mine["summary"][name][m] == cli["summary"][name][m]
    assert mine["verdicts"] == {m: v for m, v in cli["verdicts"].items() if m in mine["verdicts"]} | {
        "train_time": mine["verdicts"]["train_time"]}


def test_downloads_json_report_and_weights(server, done_run) -> None:
    run, _ = done_run
    c = server.client
    js = c.get(run["files"]["json"])
    assert js.status_code == 200 and "attachment" in js.headers["content-disposition"]
    assert js.json()["summary"] == run["result"]["summary"]
    rep = c.get(run["files"]["report"])
    assert rep.status_code == 200 and rep.headers["content-type"].startswith("text/html")
    assert "Precision-recall curves" in rep.text and "Reliability diagrams" in rep.text
    assert "attachment" in c.get(run["files"]["report"], params={"download": 1}).headers["content-disposition"]
    w = c.get(run["files"]["weights"])
    assert w.status_code == 200 and w.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(w.content))
    names = sorted(z.namelist())
    assert len(names) == 8 and all(n.endswith(".pt") for n in names)
    ck = torch.load(io.BytesIO(z.read(names[0])), weights_only=True)
    assert ck["format"] == "focalkit-compare-v1" and ck["signature"]["arch"] == "MLP"
    assert c.get(f"/api/runs/{run['id']}/log").status_code == 200
    assert c.post(f"/api/runs/{run['id']}/cancel").status_code == 409


def test_queue_cancel_and_delete(server, dataset) -> None:
    c = server.client
    long = {"dataset": dataset["id"], "target": "label", "losses": ["focal"], "gammas": [2.0], "seeds": 1, "epochs": 100000}
    first = c.post("/api/runs", json=long).json()
    second = c.post("/api/runs", json=long).json()
    # one at a time: the second waits in the queue while the first trains
    deadline = time.monotonic() + 120
    while True:
        p = c.get(f"/api/runs/{first['id']}").json()
        if p["status"] == "running" and (p["progress"].get("current") or {}).get("epoch", 0) >= 1:
            break
        assert time.monotonic() < deadline, p
        time.sleep(0.2)
    assert c.get(f"/api/runs/{second['id']}").json()["status"] == "queued"
    assert c.delete(f"/api/runs/{first['id']}").status_code == 409
    r = c.post(f"/api/runs/{second['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert c.get(f"/api/runs/{second['id']}").json()["status"] == "cancelled"
    t0 = time.monotonic()
    r = c.post(f"/api/runs/{first['id']}/cancel")
    assert r.status_code == 200 and r.json()["cancelling"] is True
    run = server.wait(first["id"], timeout=60)
    assert run["status"] == "cancelled" and time.monotonic() - t0 < 30
    assert not (server.data_dir / "runs" / first["id"] / "models").exists()
    assert c.get(f"/api/runs/{first['id']}/json").status_code == 409
    for rid in (first["id"], second["id"]):
        assert c.delete(f"/api/runs/{rid}").status_code == 200
        assert c.get(f"/api/runs/{rid}").status_code == 404
        assert not (server.data_dir / "runs" / rid).exists()


def test_tune_run_with_a_live_trial_table(server, dataset) -> None:
    body = {"kind": "tune", "dataset": dataset["id"], "target": "label", "n_trials": 4, "folds": 2, "epochs": 2}
    r = server.client.post("/api/runs", json=body)
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["command"].startswith("focalkit tune ") and "--n-trials 4" in run["command"]
    events = _events(server, run["id"], timeout=300)
    trials = [e["trial"] for k, e in events if k == "trial"]
    assert events[-1][1]["status"] == "done", server.client.get(f"/api/runs/{run['id']}/log").text[-2000:]
    assert {t["reference"] for t in trials} >= {"ce", "balanced_ce", None}
    done = server.wait(run["id"])
    res = done["result"]
    assert res["n_trials"] == 4 and res["metric"] == "ap"
    table = {t["number"]: t for t in done["progress"]["trials"]}
    assert sorted(table) == [t["number"] for t in res["trials"]]
    for t in res["trials"]:  # the live table ends with the study's own numbers
        assert table[t["number"]]["state"] == t["state"]
        assert table[t["number"]]["fold_scores"] == pytest.approx(t["fold_scores"])
    assert done["progress"]["trials_done"] == 4
    assert server.client.get(done["files"]["report"]).status_code == 200
    assert done["files"]["weights"] is None
    assert server.client.get(f"/api/runs/{run['id']}/weights").status_code == 404


def test_tune_run_can_be_cancelled(server, dataset) -> None:
    body = {"kind": "tune", "dataset": dataset["id"], "target": "label", "n_trials": 500, "folds": 2, "epochs": 200}
    run = server.client.post("/api/runs", json=body).json()
    server.wait(run["id"], statuses=("running",), timeout=60)
    deadline = time.monotonic() + 120
    while not server.client.get(f"/api/runs/{run['id']}").json()["progress"].get("trials"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert server.client.post(f"/api/runs/{run['id']}/cancel").status_code == 200
    assert server.wait(run["id"], timeout=60)["status"] == "cancelled"


def test_boosting_run(server, dataset) -> None:
    pytest.importorskip("lightgbm", reason="the gbdt extra is not installed")
    options = server.client.get("/api/options").json()
    assert {"id": "lightgbm", "available": True} in options["models"] and options["models"][0]["id"] == "net"
    body = {"dataset": dataset["id"], "target": "label", "losses": ["ce", "focal"], "gammas": [2.0],
            "seeds": 1, "model": "lightgbm", "rounds": 5}
    r = server.client.post("/api/runs", json=body)
    assert r.status_code == 201, r.text
    run = r.json()
    assert "--model lightgbm --rounds 5" in run["command"] and run["label"].endswith("; lightgbm")
    events = _events(server, run["id"])
    assert events[-1][1]["status"] == "done", events[-1]
    progress = [e for k, e in events if k == "progress"]
    assert [(e["index"], e["done"], e["total"]) for e in progress] == [(0, 5, 5), (1, 5, 5)]
    done = server.wait(run["id"])
    assert done["result"]["config"]["model"] == "lightgbm" and done["result"]["config"]["save"] is None
    assert [len(x["loss_curve"]) for x in done["result"]["runs"]] == [5, 5]
    assert done["progress"]["runs_done"] == 2 and done["files"]["weights"] is None
