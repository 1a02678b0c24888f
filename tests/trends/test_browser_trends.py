"""The trend report and the dashboard in a real browser (Playwright + Debian chromium): they never show
"nan", list under Rising only values the API's signals table calls rising, show every section header,
and draw a named colour in its own colour (white with a readable outline)."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
SECTIONS = ("Rising", "Emerging", "Falling", "Seasonal", "Low support")
WHITE, BLACK = "city=Paris|major_color=White", "city=Paris|major_color=Black"
NAN = re.compile(r"\bnan\b", re.I)

pytestmark = [pytest.mark.browser, pytest.mark.heavy]


def colour_looks(n_months: int = 30, per_month: int = 50, seed: int = 1) -> pd.DataFrame:
    """In Paris white rises, black falls, beige is flat, red comes and goes; Nice has too few looks."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(n_months):
        month = pd.Timestamp("2021-01-01") + pd.DateOffset(months=m)
        if m in (7, 8):  # two months nobody was photographed: no band may cross them
            continue
        p = {"White": 0.10 + 0.35 * m / n_months, "Black": 0.45 - 0.3 * m / n_months, "Beige": 0.15,
             "Red": 0.08 + 0.07 * np.cos(2 * np.pi * m / 12)}
        rest = max(0.0, 1 - sum(p.values()))
        names, probs = [*p, "Blue"], np.array([*p.values(), rest])
        for k in range(per_month):
            day = month + pd.Timedelta(days=int(rng.integers(0, 27)))
            rows.append({"id": f"{m}-{k}", "city": "Nice" if k % 10 == 0 else "Paris",
                         "created_time": day.strftime("%Y-%m-%d"),
                         "major_color": rng.choice(names, p=probs / probs.sum())})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM}: apt-get install -y chromium to run the browser tests")
    pytest.importorskip("playwright", reason="playwright (Python) is not installed")
    import uvicorn

    from visionlake.lake import Lake
    from visionlake.service.app import create_app
    from visionlake.service.auth import create_key

    root = tmp_path_factory.mktemp("trends-ui")
    lake = Lake(root / "lake")
    key = create_key(lake, "admin", name="analyst")["key"]
    table = root / "street-colours.csv"
    colour_looks().to_csv(table, index=False)
    app = create_app(lake=lake, job_workers=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "key": key, "table": table, "root": root}
    srv.should_exit = True
    t.join(timeout=10)
    lake.close()


@pytest.fixture(scope="module")
def api(server):
    import httpx

    with httpx.Client(base_url=server["url"], headers={"Authorization": f"Bearer {server['key']}"},
                      timeout=300) as c:
        with open(server["table"], "rb") as fh:
            r = c.post("/trends/tables", files={"file": ("street-colours.csv", fh, "text/csv")})
        assert r.status_code == 201, r.text
        q = {"table_id": r.json()["table_id"], "time": "created_time", "attributes": ["major_color"],
             "segments": ["city"], "by": "month", "min_support": 10}
        sig = c.post("/trends/signals", json={**q, "top": 40})
        assert sig.status_code == 200, sig.text
        rep = c.post("/trends/report", json={**q, "format": "html", "horizon": 6, "top": 4})
        assert rep.status_code == 200, rep.text[:500]
        path = server["root"] / "report.html"
        path.write_bytes(rep.content)
        yield {"q": q, "signals": sig.json(), "report": path}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def test_api_table_is_consistent(api) -> None:
    labels = {r["unique_id"]: r["label"] for r in api["signals"]["signals"]}
    assert labels[WHITE] in ("rising", "emerging")
    assert labels[BLACK] in ("declining", "fading")
    assert labels["city=Nice|major_color=White"] == "insufficient"
    assert "NaN" not in str(api["signals"])


def test_report_in_chromium(api, browser) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(api["report"].as_uri())
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
    text = page.inner_text("body")
    assert not NAN.search(text), NAN.search(text)
    headers = page.locator("section.trend-section h2").all_inner_texts()
    assert list(headers) == list(SECTIONS)
    labels = {r["unique_id"]: r["label"] for r in api["signals"]["signals"]}
    rising = page.locator("section[data-section='Rising'] .card").evaluate_all(
        "els => els.map(e => [e.dataset.uniqueId, e.dataset.label, e.dataset.colour])")
    assert rising, "the rising white should be listed under Rising"
    for uid, label, _colour in rising:
        assert label == "rising" and labels[uid] == "rising", (uid, label, labels.get(uid))
    falling = page.locator("section[data-section='Falling'] .card").evaluate_all(
        "els => els.map(e => e.dataset.uniqueId)")
    assert all(labels[u] in ("declining", "fading") for u in falling) and falling
    # colours match names: the curve of each colour value is drawn in that colour
    curves = page.evaluate("""() => [...document.querySelectorAll('.card')].map(card => {
        const g = card.querySelector('.js-plotly-plot');
        const tr = g.data.filter(t => t.name === 'share');
        return [card.dataset.uniqueId, tr.length ? tr[0].line.color : null,
                g.data.filter(t => t.fill === 'toself' && t.name === '95% CI').length];
    })""")
    seen = {u: (c, bands) for u, c, bands in curves}
    assert seen[WHITE][0] == "#ffffff"
    assert seen[WHITE][1] >= 2  # the two empty months break the band
    if BLACK in seen:
        assert seen[BLACK][0] == "#111111"
    assert "low support" in page.inner_text("section[data-section='Low support']").lower()
    assert not errors, errors
    page.close()


def test_dashboard_in_chromium(server, api, browser) -> None:
    page = browser.new_page(viewport={"width": 1360, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    seen_signals: list[dict] = []  # the API's table exactly as the dashboard received it
    page.on("response", lambda r: seen_signals.append(r.json()) if r.url.endswith("/trends/signals") else None)
    page.goto(server["url"] + "/#/trends")
    page.wait_for_selector("#signin-form")
    page.fill("#key-input", server["key"])
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#trend-source")
    page.wait_for_selector("#trend-sections .trend-section", timeout=120_000)
    page.wait_for_selector("#trend-chart .scatterlayer .trace", timeout=60_000)
    page.wait_for_timeout(500)
    assert page.locator("#trend-sections h3").all_inner_texts() == list(SECTIONS)
    assert seen_signals
    labels = {r["unique_id"]: r["label"] for r in seen_signals[-1]["signals"]}
    rising = page.locator("#trend-sections [data-section='Rising'] .chip").evaluate_all(
        "els => els.map(e => e.dataset.id)")
    assert rising and all(labels[u] == "rising" for u in rising)
    assert not NAN.search(page.inner_text("#trend-results"))
    curves = page.evaluate("""() => document.getElementById('trend-chart').data
        .filter(t => t.meta === 'curve').map(t => [t.name, t.line.color])""")
    colours = dict(curves)
    white = "major_color=White"  # the dashboard's query has no segment
    assert colours.get(white) == "#ffffff", colours
    outlines = page.evaluate("""() => document.getElementById('trend-chart').data
        .filter(t => t.meta === 'outline').map(t => t.line.color)""")
    assert "#555555" in outlines  # white is readable on white: a dark outline under it
    if "major_color=Black" in colours:
        assert colours["major_color=Black"] == "#111111"
    assert colours, "the chart shows the moving colour values"
    assert not errors, errors
    page.close()
