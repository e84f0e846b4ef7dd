"""The studio end to end in headless Chromium (Debian's ``chromium``, driven by playwright).

Open the page, upload a CSV, choose the target, run one seed, see live progress, see the results
table, reload and find the run in history, cancel a second run, compare two runs side by side,
tune from the page. The run started from the page is checked number for number against the
``focalkit compare`` command it records. Skips, saying why, only when Chromium or playwright is
missing (``.ci/run`` installs Chromium); never runs ``playwright install``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from browser_helpers import chromium, launch

from studio_helpers import Server, write_csv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


CHROMIUM = chromium()
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="playwright-python is not installed (pip install 'focalkit[dev]'); studio browser test skipped")
if CHROMIUM is None:  # pragma: no cover - depends on the machine
    pytest.skip("Chromium not found (apt-get install chromium, or set FOCALKIT_CHROMIUM); "
                "browser test of the studio skipped", allow_module_level=True)

T = 120_000  # ms: generous for a loaded CI machine; the runs themselves take seconds


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("studio-browser"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def browser():
    yield from launch(sync_api, CHROMIUM)


@pytest.fixture
def page(browser, studio):
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(T)
    errors: list[str] = []
    outside: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith((studio.url, "data:", "about:"))
          else None)
    pg.goto(studio.url + "/")
    pg.wait_for_selector("body[data-ready='1']")
    yield pg
    assert errors == [], errors
    assert outside == [], outside  # no CDN, nothing but this server
    ctx.close()


def _form(pg, *, epochs: int, gammas: str = "2") -> None:
    pg.uncheck("#loss-balanced_ce")
    pg.check("#loss-ce")
    pg.check("#loss-focal")
    pg.fill("#gammas", gammas)
    pg.fill("#seeds", "1")
    pg.fill("#epochs", str(epochs))


def _run_id(pg) -> str:
    return pg.get_attribute("#run-panel", "data-id")


def test_upload_run_watch_reload_cancel(page, studio, tmp_path) -> None:
    pg = page
    csv = write_csv(tmp_path / "clicks.csv")
    # upload, then choose the target column
    pg.set_input_files("#file-input", str(csv))
    pg.wait_for_function("document.querySelector('#dataset').selectedOptions[0].text.startsWith('clicks.csv')")
    pg.wait_for_selector("body[data-preview='ok']")
    assert pg.eval_on_selector_all("#target option", "os => os.map(o => o.value)") == ["a", "b", "c", "d", "label"]
    pg.select_option("#target", "label")
    pg.wait_for_selector("body[data-preview='ok'] #class-counts tr[data-class='yes']")
    counts = pg.eval_on_selector_all("#class-counts tbody tr", "rs => rs.map(r => [r.dataset.class, Number(r.cells[1].textContent)])")
    lines = csv.read_text().splitlines()[1:]
    assert dict(counts) == {"no": sum(ln.endswith(",no") for ln in lines), "yes": sum(ln.endswith(",yes") for ln in lines)}
    assert pg.inner_text("#imbalance").endswith(": 1")

    # run one seed and see it train live: status running and epochs arriving before it is done
    _form(pg, epochs=300)
    pg.click("#run")
    pg.wait_for_selector("#run-panel:not([hidden])")
    pg.wait_for_function("""() => { const p = document.querySelector('#run-panel');
        return p.dataset.status === 'running' && Number(document.querySelector('#loss-canvas').dataset.points || 0) > 0; }""")
    assert "epoch" in pg.inner_text("#progress-text")
    run_id = _run_id(pg)
    pg.wait_for_selector("#run-panel[data-status='done']")
    pg.wait_for_selector(f"body[data-result='{run_id}']")
    assert pg.get_attribute("#loss-canvas", "data-points") == "600"  # 2 losses x 300 epochs, all drawn

    # the results table shows the API's table, cell for cell (the report's own formatting)
    run = studio.client.get(f"/api/runs/{run_id}").json()
    assert run["request"]["losses"] == ["ce", "focal"] and run["request"]["gammas"] == [2.0]
    assert run["request"]["target"] == "label" and run["request"]["seeds"] == 1 and run["request"]["epochs"] == 300
    shown = pg.eval_on_selector_all("#results tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))")
    want = [[row["loss"]] + [c["text"] + (" *" if c["best"] else "") for c in row["cells"]] for row in run["table"]["rows"]]
    assert shown == want
    assert pg.inner_text("#headline") == f"Answer: {run['table']['headline']}"
    assert pg.get_attribute("#report-frame", "src") == f"/api/runs/{run_id}/report"
    links = pg.eval_on_selector_all("#downloads a", "as => as.map(a => a.textContent)")
    assert links[:3] == ["JSON", "HTML report", "trained weights (.zip)"]

    # the same numbers as the focalkit compare command the studio recorded for it
    argv = shlex.split(run["command"])
    out = tmp_path / "cli"
    r = subprocess.run([sys.executable, "-m", "focalkit", "compare", *argv[2:], "--out", str(out), "--quiet", "--no-html"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    cli = json.loads((out / "clicks.json").read_text())
    for a, b in zip(run["result"]["runs"], cli["runs"], strict=True):
        for k in ("loss", "seed", "ap", "f1", "balanced_accuracy", "ece", "brier", "loss_curve", "alpha", "prior"):
            assert a[k] == b[k], k

    # reload: the run is in the history (and opens again from the address)
    pg.reload()
    pg.wait_for_selector("body[data-ready='1']")
    row = pg.wait_for_selector(f"#history tr[data-id='{run_id}'][data-status='done']")
    assert "clicks.csv" in row.inner_text()
    pg.wait_for_selector(f"body[data-result='{run_id}']")

    # a second run, cancelled while it trains
    pg.select_option("#dataset", label=pg.eval_on_selector("#dataset", "s => [...s.options].find(o => o.text.startsWith('clicks.csv')).text"))
    pg.wait_for_selector("body[data-preview='ok']")
    _form(pg, epochs=100000)
    pg.click("#run")
    pg.wait_for_function(f"""() => {{ const p = document.querySelector('#run-panel');
        return p.dataset.id !== '{run_id}' && p.dataset.status === 'running' &&
               Number(document.querySelector('#progress-text').dataset.epoch || 0) >= 1; }}""")
    second = _run_id(pg)
    pg.click("#cancel")
    pg.wait_for_selector("#run-panel[data-status='cancelled']")
    pg.wait_for_selector(f"#history tr[data-id='{second}'][data-status='cancelled']")
    assert studio.client.get(f"/api/runs/{second}").json()["status"] == "cancelled"
    if os.environ.get("FOCALKIT_STUDIO_SCREENSHOT"):  # docs/studio.png: see docs/studio.md
        pg.evaluate(f"window.focalkitStudio.openRun('{run_id}')")
        pg.wait_for_selector(f"body[data-result='{run_id}']")
        pg.screenshot(path=os.environ["FOCALKIT_STUDIO_SCREENSHOT"], full_page=False)


def test_side_by_side_and_delete(page, studio, tmp_path) -> None:
    pg = page
    pg.set_input_files("#file-input", str(write_csv(tmp_path / "pair.csv", seed=1)))
    pg.wait_for_function("document.querySelector('#dataset').selectedOptions[0].text.startsWith('pair.csv')")
    ids = []
    for gammas in ("1", "3"):
        pg.wait_for_selector("body[data-preview='ok']")
        _form(pg, epochs=3, gammas=gammas)
        before = _run_id(pg) if pg.is_visible("#run-panel") else None
        pg.click("#run")
        pg.wait_for_function(f"document.querySelector('#run-panel').dataset.id && document.querySelector('#run-panel').dataset.id !== '{before}'")
        rid = _run_id(pg)
        pg.wait_for_selector(f"body[data-result='{rid}']")
        ids.append(rid)
    pg.wait_for_selector(f"#history tr[data-id='{ids[1]}'][data-status='done']")
    for rid in ids:
        pg.check(f"#history tr[data-id='{rid}'] .pick")
    pg.click("#compare-selected")
    pg.wait_for_selector("#side-panel:not([hidden]) .side >> nth=1")
    sides = pg.eval_on_selector_all("#side-by-side .side", "ss => ss.map(s => [s.dataset.id, s.querySelectorAll('tbody tr').length])")
    assert sides == [[ids[0], 2], [ids[1], 2]]
    heads = pg.eval_on_selector_all("#side-by-side .side tbody tr:nth-child(2) td:first-child", "ts => ts.map(t => t.textContent)")
    assert heads == ["focal γ=1", "focal γ=3"]
    # run again: the same request, the same seeds, the same numbers
    pg.click(f"#history tr[data-id='{ids[1]}'] .again")
    pg.wait_for_function(f"!['{ids[0]}', '{ids[1]}'].includes(document.querySelector('#run-panel').dataset.id)")
    rerun = _run_id(pg)
    pg.wait_for_selector(f"body[data-result='{rerun}']")
    old, new = (studio.client.get(f"/api/runs/{i}").json() for i in (ids[1], rerun))
    assert new["request"] == old["request"] and new["command"] == old["command"]
    assert [{k: v for k, v in r.items() if k not in ("train_time", "saved")} for r in new["result"]["runs"]] == \
        [{k: v for k, v in r.items() if k not in ("train_time", "saved")} for r in old["result"]["runs"]]
    pg.on("dialog", lambda d: d.accept())
    pg.click(f"#history tr[data-id='{ids[0]}'] .delete")
    pg.wait_for_selector(f"#history tr[data-id='{ids[0]}']", state="detached")
    assert studio.client.get(f"/api/runs/{ids[0]}").status_code == 404


def test_tune_from_the_page_with_a_live_trial_table(page, studio, tmp_path) -> None:
    pg = page
    pg.set_input_files("#file-input", str(write_csv(tmp_path / "tune.csv", seed=2)))
    pg.wait_for_function("document.querySelector('#dataset').selectedOptions[0].text.startsWith('tune.csv')")
    pg.wait_for_selector("body[data-preview='ok']")
    pg.click("#tab-tune")
    pg.fill("#tune-trials", "3")
    pg.fill("#tune-folds", "2")
    pg.fill("#tune-epochs", "2")
    pg.click("#tune-run")
    pg.wait_for_selector("#trials-box:not([hidden]) #trials tbody tr")
    rid = _run_id(pg)
    pg.wait_for_selector("#run-panel[data-status='done']")
    pg.wait_for_selector(f"body[data-result='{rid}']")
    states = pg.eval_on_selector_all("#trials tbody tr", "rs => rs.map(r => r.dataset.state)")
    assert len(states) == 3 and all(s in ("COMPLETE", "PRUNED") for s in states)
    assert pg.inner_text("#headline").startswith("Best: trial")
    result = studio.client.get(f"/api/runs/{rid}").json()["result"]
    assert result["n_trials"] == 3
