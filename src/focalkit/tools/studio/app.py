"""The studio's web application (FastAPI): the page, the JSON API and the live event streams.

:func:`create_app` builds it on a data directory. Endpoints (OpenAPI at ``/openapi.json``):

* ``GET /`` the page; ``GET /assets/{studio.js,studio.css}``; ``GET /playground`` the
  ``focalkit explain playground`` page, embedded next to the alpha and gamma inputs;
* ``GET /api/options``: losses, metrics, backends, defaults;
* ``POST /api/datasets`` (multipart ``file``), ``GET /api/datasets``, ``GET /api/datasets/{id}``
  (preview with ``?target=``), ``DELETE /api/datasets/{id}``;
* ``POST /api/runs``, ``GET /api/runs``, ``GET /api/runs/{id}``, ``GET /api/runs/{id}/events``
  (server-sent events), ``POST /api/runs/{id}/cancel``, ``DELETE /api/runs/{id}``, and the
  downloads ``/json``, ``/report``, ``/weights``, ``/log``.

Bad input gets a 4xx answer ``{"detail": "<one line>"}`` in the command line's wording; nothing
answers with a traceback. See :mod:`focalkit.tools.studio.guard` for the host, origin, token and
upload-size checks.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import zipfile
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from focalkit.tools.experiments.data import BUILTIN, DataError
from focalkit.tools.studio import datasets as D
from focalkit.tools.studio.guard import Guard, RequestTooLarge, lock_data_dir
from focalkit.tools.studio.jobs import Jobs, read_result, warm_up, recover_summary, remove_run_files, run_dir, tune_outputs
from focalkit.tools.studio.runs import BadRequest, RunRequest, compare_spec, join, label, tune_spec
from focalkit.tools.studio.store import ACTIVE, Store
from focalkit.tools.studio.worker import REPORT, RESULT, WEIGHTS

__all__ = ["create_app", "DEFAULT_MAX_UPLOAD"]

DEFAULT_MAX_UPLOAD = 50 * 2**20
_ASSETS = ("studio.js", "studio.css")


def _fail(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


def _validation_message(exc: RequestValidationError) -> str:
    """One line from pydantic's list of errors: ``field: what is wrong``."""
    errors = exc.errors()
    if not errors:  # pragma: no cover
        return "invalid request"
    e = errors[0]
    loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
    if e.get("type") == "json_invalid":
        return f"the request body is not valid JSON: {e.get('ctx', {}).get('error', e.get('msg'))}"
    if e.get("type") == "missing" and not loc:
        return "the request needs a JSON body"
    where = ".".join(loc)
    msg = e.get("msg", "invalid value")
    return f"{where}: {msg}" if where else msg


def create_app(
    data_dir: str | Path,
    *,
    token: Optional[str] = None,
    max_upload: int = DEFAULT_MAX_UPLOAD,
    concurrency: int = 1,
    grace: float = 10.0,
) -> FastAPI:
    """The studio application on ``data_dir`` (created if missing; SQLite history inside).

    Args:
        data_dir: where ``studio.db``, ``uploads/`` and ``runs/`` live.
        token: when set, every request must carry it (``?token=``, a cookie set by the page,
            or ``Authorization: token ...``); also lifts the loopback-only Host check.
        max_upload: largest accepted upload, in bytes.
        concurrency: runs executed at the same time (the others wait in the queue).
        grace: seconds a cancelled worker gets to stop before it is terminated.

    Example:
        >>> import tempfile
        >>> from starlette.testclient import TestClient
        >>> app = create_app(tempfile.mkdtemp())
        >>> with TestClient(app, base_url="http://127.0.0.1") as client:
        ...     [d["id"] for d in client.get("/api/datasets").json()][:2]
        ['dense', 'digits']
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_data_dir(data_dir)
    store = Store(data_dir)
    store.recover(recover_summary(data_dir))
    jobs = Jobs(store, data_dir, concurrency=concurrency, grace=grace)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            yield
        finally:
            await run_in_threadpool(jobs.shutdown)
            store.close()
            lock.close()

    from focalkit import __version__

    app = FastAPI(
        title="focalkit studio", version=__version__, lifespan=lifespan,
        docs_url=None, redoc_url=None,  # the Swagger page loads from a CDN; the studio works offline
        description="Train cross-entropy against focal loss on your data, compare runs and tune "
                    "gamma and alpha from a browser. The JSON API that the page uses.",
    )
    app.state.store, app.state.jobs, app.state.data_dir = store, jobs, data_dir
    app.add_middleware(Guard, token=token, max_upload=max_upload)

    # ------------------------------------------------------------------ errors: one line, 4xx
    @app.exception_handler(RequestValidationError)
    async def _bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - a bug
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    # ------------------------------------------------------------------ the page
    def _asset(name: str) -> str:
        return resources.files("focalkit.tools.studio").joinpath("assets", name).read_text("utf-8")

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(_asset("studio.html"), headers={"Cache-Control": "no-store"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
               'fill="#1f77b4"/><path d="M3 13 C5 4 8 3 13 3" stroke="#fff" stroke-width="2" fill="none"/></svg>')
        return Response(svg, media_type="image/svg+xml")

    @app.get("/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in _ASSETS:
            raise _fail(404, f"no asset {name!r}")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(_asset(name), media_type=kind, headers={"Cache-Control": "no-store"})

    @app.get("/playground", include_in_schema=False)
    async def playground(gamma: float = 2.0, alpha: Optional[float] = 0.25, embed: bool = True) -> HTMLResponse:
        from focalkit.tools.explain.playground import playground_html

        try:
            html = playground_html(gamma=gamma, alpha=alpha)
        except (TypeError, ValueError) as e:
            raise _fail(400, str(e)) from None
        if embed:  # inside the studio: the controls and the curves, no title
            html = html.replace("</head>", "<style>body{padding:.4rem .6rem}h1,p.lead{display:none}"
                                ".controls{position:static}</style></head>", 1)
        return HTMLResponse(html)

    # ------------------------------------------------------------------ options
    @app.get("/api/options", summary="What the page can offer: losses, metrics, backends, defaults")
    async def options() -> dict[str, Any]:
        import importlib.util
        from types import SimpleNamespace

        from focalkit.tools.experiments.boosting import MODELS, BoostConfig

        warm_up()  # the page is open: get the workers' fork server ready for the first run

        import focalkit as fk
        from focalkit.tools.experiments.compare import COMPARE_GAMMAS, LOSS_KINDS, METRIC_LABELS
        from focalkit.tools.experiments.metrics import HIGHER_IS_BETTER, METRICS, TUNABLE_METRICS
        from focalkit.tools.experiments.train import default_config

        return {
            "version": __version__,
            "losses": list(LOSS_KINDS),
            "gammas": list(COMPARE_GAMMAS),
            "alpha_methods": ["inverse", "inverse_sqrt", "effective_number"],
            "backends": ["auto"] + list(fk.available_backends()),
            "metrics": list(METRICS),
            "metric_labels": METRIC_LABELS,
            "higher_is_better": HIGHER_IS_BETTER,
            "tune_metrics": list(TUNABLE_METRICS),
            "models": [{"id": m, "available": m == "net" or importlib.util.find_spec(m) is not None} for m in MODELS],
            "default_rounds": BoostConfig().rounds,
            "default_epochs": {t: default_config(SimpleNamespace(task=t)).epochs for t in ("dense", "binary", "multiclass")},
            "max_upload": max_upload,
            "builtin": list(BUILTIN),
            "token_required": token is not None,
        }

    # ------------------------------------------------------------------ datasets
    def _dataset_json(rec: dict[str, Any]) -> dict[str, Any]:
        out = {"id": rec["id"], "name": rec["name"], "kind": "upload", "size": rec["size"], "created": rec["created"]}
        out.update(rec["info"])
        return out

    def _builtin_json(name: str) -> dict[str, Any]:
        return {"id": name, "name": name, "kind": "builtin", "columns": []}

    def _source(dataset_id: str) -> tuple[str, dict[str, Any] | None]:
        if dataset_id in BUILTIN:
            return dataset_id, None
        rec = store.get_dataset(dataset_id)
        if rec is None:
            raise _fail(404, f"no dataset {dataset_id!r} (GET /api/datasets lists them; built-in: {', '.join(BUILTIN)})")
        return D.dataset_source(rec, data_dir, dataset_id), rec

    @app.get("/api/datasets", summary="The built-in sets (dense, digits) and the uploads")
    async def list_datasets() -> list[dict[str, Any]]:
        return [_builtin_json(n) for n in BUILTIN] + [_dataset_json(r) for r in store.list_datasets()]

    @app.post("/api/datasets", status_code=201, summary="Upload a .csv or .npz file (multipart field 'file')",
              openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                  "type": "object", "required": ["file"],
                  "properties": {"file": {"type": "string", "format": "binary"}}}}}}})
    async def upload(request: Request) -> dict[str, Any]:
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise _fail(415, "upload the file as multipart/form-data with the field 'file'")
        try:
            form = await request.form(max_files=1, max_fields=4)
        except RequestTooLarge as e:
            raise _fail(413, str(e)) from None
        except Exception as e:  # malformed multipart
            raise _fail(400, f"cannot read the upload: {getattr(e, 'detail', None) or e}") from None
        try:
            f = form.get("file")
            if f is None or isinstance(f, str):
                raise _fail(400, "the upload needs a file in the multipart field 'file'")
            try:
                uid, path, size = await run_in_threadpool(D.save_upload, data_dir, f.filename or "data.csv", f.file, max_upload)
            except D.UploadTooLarge as e:
                raise _fail(413, str(e)) from None
            except DataError as e:
                raise _fail(400, str(e)) from None
        finally:
            await form.close()
        try:
            info = await run_in_threadpool(_describe_upload, path)
        except DataError as e:
            shutil.rmtree(path.parent, ignore_errors=True)
            raise _fail(400, str(e)) from None
        store.add_dataset(uid, name=path.name, path=str(path.relative_to(data_dir)), size=size, info=info)
        return _dataset_json(store.get_dataset(uid))

    @app.get("/api/datasets/{dataset_id}", summary="Preview: rows, class counts and imbalance for a target")
    async def get_dataset(dataset_id: str, target: Optional[str] = None, data_seed: int = 0) -> dict[str, Any]:
        source, rec = _source(dataset_id)
        out = _builtin_json(dataset_id) if rec is None else _dataset_json(rec)
        if rec is not None and rec["info"].get("format") == "npz":
            target = None
        elif rec is not None and target is None:
            target = rec["info"].get("target")
        try:
            out.update(await run_in_threadpool(lambda: D.preview(source, target=target, data_seed=data_seed)))
            out.pop("error", None)
        except DataError as e:
            raise _fail(400, str(e)) from None
        if rec is not None and rec["info"].get("format") == "csv":
            out["target"] = target
        return out

    @app.delete("/api/datasets/{dataset_id}", summary="Delete an upload (not while a run uses it)")
    async def delete_dataset(dataset_id: str) -> dict[str, Any]:
        if dataset_id in BUILTIN:
            raise _fail(400, f"{dataset_id!r} is built in and cannot be deleted")
        _, rec = _source(dataset_id)
        busy = [r["id"] for r in store.list_runs() if r["dataset"] == dataset_id and jobs.is_active(r["id"])]
        if busy:
            raise _fail(409, f"dataset {dataset_id!r} is used by the active run(s) {', '.join(busy)}; cancel them first")
        store.delete_dataset(dataset_id)
        shutil.rmtree((data_dir / rec["path"]).parent, ignore_errors=True)
        return {"deleted": dataset_id}

    # ------------------------------------------------------------------ runs
    def _get_run(run_id: str) -> dict[str, Any]:
        run = store.get_run(run_id)
        if run is None:
            raise _fail(404, f"no run {run_id!r}")
        return run

    def _run_json(run: dict[str, Any], *, full: bool) -> dict[str, Any]:
        live = jobs.state(run["id"])
        status = live["status"] if live else run["status"]
        out = {k: run[k] for k in ("id", "kind", "dataset", "label", "command", "created", "started",
                                    "finished", "summary", "request")}
        out["status"] = status
        out["error"] = live["error"] if live else run["error"]
        folder = run_dir(data_dir, run["id"])
        has_result = status == "done"
        out["files"] = {
            "json": f"/api/runs/{run['id']}/json" if has_result else None,
            "report": f"/api/runs/{run['id']}/report" if has_result else None,
            "weights": f"/api/runs/{run['id']}/weights" if has_result and (folder / WEIGHTS).is_dir() else None,
            "log": f"/api/runs/{run['id']}/log",
        }
        if full:
            out["progress"] = live["progress"] if live else run["progress"]
            if has_result:
                out["result"] = read_result(data_dir, run)
                if run["kind"] == "compare" and out["result"] is not None:
                    out["table"] = result_table(out["result"])
        return out

    @app.post("/api/runs", status_code=201, summary="Queue a comparison (or, with kind='tune', a tuning study)")
    async def create_run(req: RunRequest) -> dict[str, Any]:
        source, rec = _source(req.dataset)
        if rec is not None and rec["info"].get("format") == "npz" and req.target not in (None, "y"):
            raise _fail(400, f"{rec['name']}: target does not apply to .npz files (uses 'y')")
        warm_up()
        run_id = secrets.token_hex(6)
        folder = run_dir(data_dir, run_id)
        name = rec["name"] if rec else req.dataset
        try:
            if req.kind == "compare":
                cfg, backend, device, argv = compare_spec(req, source)
                if cfg.model == "net":  # boosting models are not saved (focalkit compare --save needs the net)
                    cfg.save = str(folder / WEIGHTS)
                from focalkit.tools.experiments.compare import prepare

                await run_in_threadpool(prepare, cfg)  # the data and every alpha checked now, not in the queue
                spec = {"kind": "compare", "config": _config_dict(cfg), "backend": backend, "device": device,
                        "command": join(argv), "run_dir": str(folder)}
            else:
                study = f"{Path(name).stem}-{req.metric}"
                run_argv, shown = tune_spec(req, source, folder, study)
                await run_in_threadpool(_check_tune_data, source, req)
                spec = {"kind": "tune", "argv": run_argv, "study": study, "command": join(shown), "run_dir": str(folder)}
        except (BadRequest, DataError, ValueError, TypeError) as e:
            raise _fail(400, str(e)) from None
        store.add_run(run_id, kind=req.kind, dataset=req.dataset, label=label(req, name),
                      request=req.model_dump(), command=spec["command"])
        jobs.submit(run_id, spec)
        return _run_json(store.get_run(run_id), full=False)

    @app.get("/api/runs", summary="Every run, newest first (no results; GET /api/runs/{id} has them)")
    async def list_runs() -> list[dict[str, Any]]:
        return [_run_json(r, full=False) for r in store.list_runs()]

    @app.get("/api/runs/{run_id}", summary="One run: status, progress and, when done, the result JSON")
    async def get_run(run_id: str) -> dict[str, Any]:
        run = _get_run(run_id)
        return await run_in_threadpool(_run_json, run, full=True)

    @app.get("/api/runs/{run_id}/events", summary="Live progress as server-sent events",
             response_class=StreamingResponse)
    async def events(run_id: str) -> StreamingResponse:
        _get_run(run_id)
        loop = asyncio.get_running_loop()

        def sse(kind: str, data: Any) -> str:
            return f"event: {kind}\ndata: {json.dumps(data, allow_nan=False)}\n\n"

        async def stream():
            sub = jobs.subscribe(run_id, loop)  # here, so that a stream never started leaves nothing
            if sub is None:  # not active in this server: its stored state, then the end
                run = store.get_run(run_id) or {"status": "failed", "progress": {}, "error": "deleted"}
                yield sse("snapshot", {"status": run["status"], "progress": run["progress"], "error": run["error"]})
                yield sse("end", {"type": "end", "status": run["status"], "error": run["error"]})
                return
            snap, q = sub
            try:
                yield sse("snapshot", snap)
                while True:
                    try:
                        ev = await asyncio.wait_for(q.get(), 15)
                    except asyncio.TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    yield sse(ev["type"], ev)
                    if ev["type"] == "end":
                        return
            finally:
                jobs.unsubscribe(run_id, q)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.post("/api/runs/{run_id}/cancel", summary="Cancel a queued or running run")
    async def cancel(run_id: str) -> dict[str, Any]:
        run = _get_run(run_id)
        try:
            status = jobs.cancel(run_id)
        except LookupError:
            status = (jobs.state(run_id) or run)["status"]
            raise _fail(409, f"run {run_id} is {status}; only a queued or running run can be cancelled") from None
        return {"id": run_id, "status": status, "cancelling": status == "running"}

    @app.delete("/api/runs/{run_id}", summary="Delete a run and its files (cancel it first if active)")
    async def delete_run(run_id: str) -> dict[str, Any]:
        _get_run(run_id)
        if jobs.is_active(run_id):
            raise _fail(409, f"run {run_id} is still active; cancel it first")
        store.delete_run(run_id)
        await run_in_threadpool(remove_run_files, data_dir, run_id)
        return {"deleted": run_id}

    def _done_run(run_id: str) -> dict[str, Any]:
        run = _get_run(run_id)
        status = (jobs.state(run_id) or run)["status"]
        if status != "done":
            raise _fail(409, f"run {run_id} is {status}; its files exist once it is done")
        return run

    def _stem(run: dict[str, Any]) -> str:
        return Path(run["label"].split(":")[0].replace("tune ", "")).stem or "run"

    @app.get("/api/runs/{run_id}/json", summary="Download the result JSON (what focalkit compare/tune writes)")
    async def download_json(run_id: str) -> FileResponse:
        run = _done_run(run_id)
        folder = run_dir(data_dir, run_id)
        path = folder / RESULT if run["kind"] == "compare" else (tune_outputs(folder) or (folder / "x", None))[0]
        if not path.exists():
            raise _fail(404, f"run {run_id} has no result file")
        return FileResponse(path, media_type="application/json", filename=f"{_stem(run)}-{run_id}.json")

    @app.get("/api/runs/{run_id}/report", summary="The HTML report (inline; ?download=1 to save it)")
    async def download_report(run_id: str, download: bool = False) -> FileResponse:
        run = _done_run(run_id)
        folder = run_dir(data_dir, run_id)
        out = tune_outputs(folder)
        path = folder / REPORT if run["kind"] == "compare" else (out[1] if out else folder / "x")
        if not path.exists():
            raise _fail(404, f"run {run_id} has no report")
        return FileResponse(path, media_type="text/html", filename=f"{_stem(run)}-{run_id}.html",
                            content_disposition_type="attachment" if download else "inline")

    @app.get("/api/runs/{run_id}/weights", summary="The trained weights of every loss and seed (zip of .pt files)")
    async def download_weights(run_id: str) -> FileResponse:
        run = _done_run(run_id)
        folder = run_dir(data_dir, run_id)
        if run["kind"] != "compare" or not (folder / WEIGHTS).is_dir():
            raise _fail(404, f"run {run_id} saved no weights (compare runs do; tune runs keep only scores)")
        zpath = folder / "weights.zip"
        if not zpath.exists():
            await run_in_threadpool(_zip, folder / WEIGHTS, zpath)
        return FileResponse(zpath, media_type="application/zip", filename=f"{_stem(run)}-{run_id}-weights.zip")

    @app.get("/api/runs/{run_id}/log", summary="The worker's log (warnings, tracebacks of bugs)")
    async def download_log(run_id: str) -> PlainTextResponse:
        _get_run(run_id)
        folder = run_dir(data_dir, run_id)
        texts = [p.read_text("utf-8", errors="replace") for p in (folder / "worker.log", folder / "tune.log") if p.exists()]
        return PlainTextResponse("".join(texts)[-200_000:])

    return app


def result_table(result: dict[str, Any]) -> dict[str, Any]:
    """The compare table as the page shows it: every cell's text from ``format_metric`` (the
    same text as the HTML report), the best mean per metric and whether it is clearly best."""
    from focalkit.tools._format import format_metric
    from focalkit.tools.experiments.compare import METRIC_LABELS
    from focalkit.tools.experiments.metrics import HIGHER_IS_BETTER, METRICS

    verd = result["verdicts"]
    rows = []
    for name, per in result["summary"].items():
        cells = []
        for m in METRICS:
            s = per[m]
            cells.append({"metric": m, "mean": s["mean"], "std": s["std"],
                          "text": f"{format_metric(m, s['mean'])} ± {format_metric(m, s['std'])}",
                          "best": verd[m]["best"] == name, "clear": bool(verd[m]["best"] == name and verd[m]["clear"])})
        rows.append({"loss": name, "cells": cells})
    return {
        "metrics": [{"key": m, "label": METRIC_LABELS[m], "higher": HIGHER_IS_BETTER[m]} for m in METRICS],
        "rows": rows,
        "verdicts": [{"metric": m, "label": METRIC_LABELS[m], "text": verd[m]["text"]} for m in METRICS],
        "headline": result.get("headline", ""),
        "seeds": result["seeds"],
    }


def _config_dict(cfg: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(cfg)


def _describe_upload(path: Path) -> dict[str, Any]:
    """What POST /api/datasets answers for a new file: rows, columns, the default target's classes."""
    if path.suffix.lower() == ".npz":
        info = {"format": "npz", "columns": ["y"], "target": "y"}
        info.update(D.preview(str(path)))  # a bad .npz is refused now
        return info
    columns, rows = D.csv_columns_and_rows(path)
    if len(columns) < 2:
        raise DataError(f"{path.name}: need at least one feature column besides the target")
    target = "target" if "target" in columns else columns[-1]
    info: dict[str, Any] = {"format": "csv", "columns": columns, "rows": rows, "target": target}
    try:
        info.update(D.preview(str(path), target=target))
    except DataError as e:  # the page offers the other columns
        info["error"] = str(e)
    return info


def _check_tune_data(source: str, req: RunRequest) -> None:
    from focalkit.tools.experiments.data import kfold, load_data

    kfold(load_data(source, target=req.target, seed=req.data_seed), req.folds, seed=req.data_seed)


def _zip(folder: Path, dest: Path) -> None:
    tmp = dest.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        for p in sorted(folder.glob("*.pt")):
            z.write(p, p.name)
    tmp.replace(dest)
