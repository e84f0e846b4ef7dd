"""The playground page in a real browser: headless Chromium (Debian's ``chromium``) via playwright.

Loads the page from ``file://``, moves the gamma and alpha sliders with the keyboard (as a user
would), reads the four-case table and the shares table from the DOM and compares them with
:mod:`focalkit.tools.explain`. Skips, saying why, only when Chromium or playwright is missing; ``.ci/run``
installs Chromium. Never runs ``playwright install``: the browser is the system's.
"""

from __future__ import annotations

import math

import pytest
from browser_helpers import chromium, launch

from focalkit.tools.explain.api import explain_curves, explain_shares, explain_table
from focalkit.tools.explain.playground import write_playground

pytestmark = pytest.mark.browser


CHROMIUM = chromium()
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="playwright-python is not installed (pip install 'focalkit[dev]'); browser test skipped")
if CHROMIUM is None:  # pragma: no cover - depends on the machine
    pytest.skip("Chromium not found (apt-get install chromium, or set FOCALKIT_CHROMIUM); "
                "browser test of the playground skipped", allow_module_level=True)

REL = 1e-9


@pytest.fixture(scope="module")
def browser():
    yield from launch(sync_api, CHROMIUM)


@pytest.fixture
def page(browser, tmp_path):
    path = write_playground(tmp_path / "playground.html")
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    # nothing may leave the page: block every non-file request (no CDN, no server)
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:"))
          else None)
    pg.goto(path.resolve().as_uri())
    pg.wait_for_selector("body[data-ready='1']")
    yield pg
    assert errors == [], errors
    assert requests == [], requests
    ctx.close()


def _read_table(pg, table_id: str, row_key: str) -> dict[str, dict[str, float | None]]:
    return pg.evaluate(
        """([id, rowKey]) => Object.fromEntries([...document.querySelectorAll(`#${id} tbody tr`)]
            .map(tr => [tr.dataset[rowKey], Object.fromEntries([...tr.querySelectorAll('td[data-value]')]
              .map(td => [td.dataset.key, td.dataset.value === 'null' ? null : Number(td.dataset.value)]))]))""",
        [table_id, row_key])


def _read_texts(pg, table_id: str) -> list[list[str]]:
    return pg.evaluate(
        """id => [...document.querySelectorAll(`#${id} tbody tr`)].map(tr =>
              [...tr.querySelectorAll('td')].map(td => td.firstChild ? td.firstChild.textContent : ''))""",
        table_id)


def _set_slider(pg, sel: str, target: float, step: float) -> None:
    """Move a range slider with the keyboard: Home, then ArrowRight until the value is reached."""
    pg.focus(sel)
    pg.keyboard.press("Home")
    for _ in range(round(target / step)):
        pg.keyboard.press("ArrowRight")
    assert float(pg.input_value(sel)) == pytest.approx(target, abs=1e-9)


def _check_table(pg, gamma: float, alpha: float | None) -> None:
    got = _read_table(pg, "cases", "name")
    want = explain_table(gamma=gamma, alpha=alpha)
    assert list(got) == [r.name for r in want.rows]
    for r in want.rows:
        g = got[r.name]
        for key in ("p", "y", "p_t", "alpha_t", "modulating", "ce", "focal"):
            assert g[key] == pytest.approx(getattr(r, key), rel=REL, abs=1e-300), (r.name, key)
        if math.isinf(r.ratio):
            assert g["ratio"] is None
        else:
            assert g["ratio"] == pytest.approx(r.ratio, rel=REL), (r.name, "ratio")


def _check_texts(pg, gamma: float, alpha: float | None) -> None:
    """What the page shows is what ``focalkit explain table`` / ``shares`` print."""
    from focalkit.tools.explain.cli import _fmt, _share

    keys = ("p_t", "alpha_t", "modulating", "ce", "focal", "ratio")
    shown = {row[0]: row[3:] for row in _read_texts(pg, "cases")}
    for r in explain_table(gamma=gamma, alpha=alpha).rows:
        assert shown[r.name] == [_fmt(getattr(r, k)) for k in keys], r.name
    shown_shares = [row[-1] for row in _read_texts(pg, "shares")]
    assert shown_shares == [_share(r.positive_share)
                            for r in explain_shares(gammas=[gamma], alpha=alpha).rows]


def _check_shares(pg, gamma: float, alpha: float | None, **inputs) -> None:
    got = _read_table(pg, "shares", "loss")
    want = explain_shares(gammas=[gamma], alpha=alpha, **inputs).rows
    assert len(got) == len(want) == 3
    for (name, g), r in zip(got.items(), want):
        assert g["gamma"] == pytest.approx(r.gamma, abs=1e-12), name
        for key in ("negatives_total", "positives_total", "positive_share"):
            assert g[key] == pytest.approx(getattr(r, key), rel=REL, abs=1e-300), (name, key)


def test_initial_page_matches_python(page) -> None:
    assert page.title().startswith("focalkit playground")
    _check_table(page, 2.0, 0.25)
    _check_shares(page, 2.0, 0.25)
    texts = {row[0]: row for row in _read_texts(page, "cases")}
    assert [texts[n][-1] for n in ("easy positive", "easy negative", "hard positive",
                                   "hard negative")] == ["400", "133.3", "4.938", "1.646"]
    shares = {row[0]: row for row in _read_texts(page, "shares")}
    assert shares["cross-entropy"][-1] == "0.004561"
    assert shares["focal gamma=2"][-1] == "0.9374"
    assert page.inner_text("#gamma-value") == "2" and page.inner_text("#alpha-value") == "0.25"


@pytest.mark.parametrize("gamma,alpha", [(0.5, 0.25), (1.0, 0.5), (3.5, 0.9), (0.0, 0.0),
                                         (5.0, 0.25)])
def test_sliders_update_table_and_shares(page, gamma: float, alpha: float) -> None:
    _set_slider(page, "#gamma", gamma, 0.05)
    _set_slider(page, "#alpha", alpha, 0.01)
    assert page.inner_text("#gamma-value") == f"{gamma:g}"
    _check_table(page, gamma, alpha)
    _check_shares(page, gamma, alpha)
    _check_texts(page, gamma, alpha)


def test_alpha_off_and_shares_inputs(page) -> None:
    _set_slider(page, "#gamma", 1.5, 0.05)
    page.check("#alpha-off")
    assert page.inner_text("#alpha-value") == "off"
    _check_table(page, 1.5, None)
    page.fill("#negatives", "5000")
    page.fill("#p-negative", "0.9")
    page.fill("#positives", "50")
    page.fill("#p-positive", "0.3")
    _check_shares(page, 1.5, None, negatives=5000, p_negative=0.9, positives=50, p_positive=0.3)
    page.fill("#p-positive", "1.5")  # bad input: a message, the last good table stays
    assert "between 0 and 1" in page.inner_text("#shares-error")
    page.fill("#p-positive", "0.3")
    assert page.inner_text("#shares-error") == ""


def test_curves_match_python(page) -> None:
    """The page's curve math (window.focalkit.curves) against autograd through fk's loss."""
    for gammas, alpha in (([0.0, 0.5, 1.0, 2.0, 5.0], None), ([0.0, 2.0, 3.3], 0.25)):
        want = explain_curves(gammas=gammas, alpha=alpha, points=57, p_min=1e-3, p_max=1 - 1e-4)
        got = page.evaluate("([g, a]) => window.focalkit.curves(g, a, 57, 1e-3, 1 - 1e-4)",
                            [gammas, alpha])
        assert got["p_t"] == pytest.approx(want.p_t, rel=1e-12)
        for i in range(len(gammas)):
            assert got["loss"][i] == pytest.approx(want.loss[i], rel=1e-8, abs=1e-300)
            assert got["grad"][i] == pytest.approx(want.grad[i], rel=1e-7, abs=1e-300)


def test_canvases_are_drawn(page) -> None:
    def ink(canvas_id: str) -> int:
        return page.evaluate(
            """id => { const c = document.getElementById(id), d = c.getContext('2d')
                 .getImageData(0, 0, c.width, c.height).data; let n = 0;
                 for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""", canvas_id)

    before = ink("loss-plot")
    assert before > 1000 and ink("grad-plot") > 1000
    red = """id => { const c = document.getElementById(id), d = c.getContext('2d')
               .getImageData(0, 0, c.width, c.height).data; let n = 0;
               for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i+1] < 80 && d[i+2] < 80) n++;
               return n; }"""
    assert page.evaluate(red, "loss-plot") > 100  # the chosen gamma's bold curve
    snap = page.evaluate("id => document.getElementById(id).toDataURL()", "loss-plot")
    _set_slider(page, "#gamma", 4.0, 0.05)
    assert page.evaluate("id => document.getElementById(id).toDataURL()", "loss-plot") != snap


def test_initial_values_from_python(browser, tmp_path) -> None:
    path = write_playground(tmp_path / "p.html", gamma=1.23, alpha=None, negatives=100,
                            p_negative=0.8, positives=3, p_positive=0.2)
    pg = browser.new_page()
    pg.goto(path.resolve().as_uri())
    pg.wait_for_selector("body[data-ready='1']")
    assert float(pg.input_value("#gamma")) == pytest.approx(1.25)
    assert pg.is_checked("#alpha-off")
    _check_table(pg, 1.25, None)
    _check_shares(pg, 1.25, None, negatives=100, p_negative=0.8, positives=3, p_positive=0.2)
    pg.close()


# ----------------------------------------------------------------------------- the focal family (issue 14)
def _set_range(pg, sel: str, target: float, lo: float, step: float) -> None:
    """Like :func:`_set_slider` for a slider whose minimum is ``lo``."""
    pg.focus(sel)
    pg.keyboard.press("Home")
    for _ in range(round((target - lo) / step)):
        pg.keyboard.press("ArrowRight")
    assert float(pg.input_value(sel)) == pytest.approx(target, abs=1e-9)


def _check_family(pg, texts: bool = False, **params) -> None:
    """The family table in the page against autograd through the library's losses (and, with
    ``texts``, the cells against what ``focalkit explain family`` prints: not for any values, since
    a ratio on a rounding tie, e.g. 287.5 %, may round either way from the last bit)."""
    from focalkit.tools.explain.cli import _fmt, _pct
    from focalkit.tools.explain.family import explain_family

    want = explain_family(**params)
    got = _read_table(pg, "family", "name")
    assert list(got) == [m.name for m in want.members]
    shown = {row[0]: row[1:] for row in _read_texts(pg, "family")}
    for m in want.members:
        for j in range(len(want.p_t)):
            assert got[m.name][f"grad_{j}"] == pytest.approx(m.grad[j], rel=1e-9, abs=1e-300), (m.name, j)
        if texts:
            assert shown[m.name] == [f"{_fmt(g)} ({_pct(r)})" for g, r in zip(m.grad, m.ratio)], m.name


def test_family_section_matches_python(page) -> None:
    _check_family(page, texts=True)
    shown = {row[0]: row[1:] for row in _read_texts(page, "family")}
    assert shown["focal γ=2"][2] == "0.002896 (2.9 %)" and shown["Poly-1 ε=1"][2] == "0.19 (190 %)"
    _set_range(page, "#epsilon", -1.0, -1.0, 0.1)
    _set_range(page, "#gamma-neg", 0.0, 0.0, 0.5)
    _set_range(page, "#clip", 0.0, 0.0, 0.01)
    _check_family(page, epsilon=-1.0, gamma_neg=0.0, clip=0.0)
    _set_slider(page, "#gamma", 0.5, 0.05)
    _set_range(page, "#epsilon", 2.5, -1.0, 0.1)
    _set_range(page, "#gamma-neg", 6.5, 0.0, 0.5)
    _set_range(page, "#clip", 0.15, 0.0, 0.01)
    page.uncheck("#flsd53")
    _check_family(page, gamma=0.5, epsilon=2.5, gamma_neg=6.5, clip=0.15, flsd53=False)


def test_family_curves_match_python(page) -> None:
    from focalkit.tools.explain.family import explain_family

    pts = [1e-3 + (1 - 1e-4 - 1e-3) * i / 56 for i in range(57)]
    for params in (dict(gamma=2.0, epsilon=1.0, flsd53=True, gamma_neg=4.0, clip=0.05),
                   dict(gamma=0.0, epsilon=-1.0, flsd53=True, gamma_neg=0.0, clip=0.0)):
        want = explain_family(p_t=pts, **params)
        got = page.evaluate("([g, f, pts]) => window.focalkit.family(g, f, pts)",
                            [params["gamma"], {k: v for k, v in params.items() if k != "gamma"}, pts])
        for gm, wm in zip(got["members"], want.members):
            assert gm["name"] == wm.name
            assert gm["loss"] == pytest.approx(wm.loss, rel=1e-8, abs=1e-300), wm.name
            assert gm["grad"] == pytest.approx(wm.grad, rel=1e-7, abs=1e-300), wm.name
    ink = """id => { const c = document.getElementById(id), d = c.getContext('2d')
               .getImageData(0, 0, c.width, c.height).data; let n = 0;
               for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    assert page.evaluate(ink, "family-loss-plot") > 1000 and page.evaluate(ink, "family-grad-plot") > 1000
