"""The web UI in a real browser: Playwright (Python) driving Debian's chromium, headless.

A uvicorn server runs the app on 127.0.0.1 (free port) in a thread, on a lake with one enrolled LFW
person and a fashion collection of real product photos tagged by the fashion team's tiny ONNX test
model (the real model is not available offline; the tiny one does map colour words to colours, so a
text search for "blue" really returns blue products). Screenshots of each main page are saved under
``test-output/screenshots/``.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from visionlake.config import shared_data_dir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]

# heavy tier: chromium plus a lake built from real LFW faces and product photos (well over 10 s here)
pytestmark = [pytest.mark.browser, pytest.mark.heavy, pytest.mark.shared_data]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM}: apt-get install -y chromium to run the browser tests")
    pytest.importorskip("playwright", reason="playwright (Python) is not installed")
    data = shared_data_dir()
    lfw = data / "lfw" / "images"
    products = data / "fashion_products"
    if not lfw.is_dir() or not (products / "styles.csv").exists():
        pytest.skip(f"LFW or fashion_products not found under {data} (set VISIONLAKE_DATA)")
    pytest.importorskip("onnx", reason="the tiny fashion test model needs the onnx package")
    import uvicorn

    from visionlake.faces import gallery
    from visionlake.fashion.tiny_model import build_tiny_model
    from visionlake.ingest import ingest
    from visionlake.lake import Lake
    from visionlake.service.app import create_app
    from visionlake.service.auth import create_key

    root = tmp_path_factory.mktemp("ui")
    lake = Lake(root / "lake")
    lake.create_collection("people", "faces")
    bush = sorted((lfw / "George_W_Bush").glob("*.jpg"))
    gallery.enroll(lake, "people", person="George W Bush", images=bush[:2], consent="browser test fixture")
    gallery.enroll(lake, "people", person="Tony Blair", images=sorted((lfw / "Tony_Blair").glob("*.jpg"))[:1],
                   consent="browser test fixture")
    model = build_tiny_model(root / "tiny-model")
    lake.create_collection("catalog", "fashion", settings={"tagger_options": {"model": str(model)}})
    import csv

    with open(products / "styles.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if (products / "images" / f"{r['id']}.jpg").exists()][:36]
    manifest = root / "products.txt"
    manifest.write_text("path\n" + "\n".join(str(products / "images" / f"{r['id']}.jpg") for r in rows) + "\n")
    ingest(lake, manifest, "catalog", meta=products / "styles.csv", workers=0)
    key = create_key(lake, "admin", name="analyst")["key"]

    app = create_app(lake=lake, job_workers=0)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "key": key, "probe": bush[2]}
    srv.should_exit = True
    t.join(timeout=10)
    lake.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1360, "height": 900})
        pg = ctx.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.errors = errors  # type: ignore[attr-defined]
        yield pg
        browser.close()


def test_sign_in(server, page):
    page.goto(server["url"] + "/")
    page.wait_for_selector("#signin-form")
    page.fill("#key-input", "vlk_wrong_key")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#signin-error:has-text('not valid')")
    page.screenshot(path=str(SHOTS / "01-sign-in.png"))
    page.fill("#key-input", server["key"])
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("table >> text=catalog")
    assert page.is_visible("text=people")
    page.screenshot(path=str(SHOTS / "02-collections.png"), full_page=True)
    assert not page.errors


def test_identify_draws_box_with_match(server, page):
    page.goto(server["url"] + "/#/identify")
    page.wait_for_selector("#identify-file")
    page.set_input_files("#identify-file", str(server["probe"]))
    page.click("#main form button[type=submit]")
    label = page.wait_for_selector("#photo-stage .box span", timeout=60_000)
    assert "George W Bush" in label.inner_text()
    assert page.is_visible(".result-item >> text=match")
    box = page.query_selector("#photo-stage .box").bounding_box()
    assert box["width"] > 20 and box["height"] > 20
    page.screenshot(path=str(SHOTS / "03-identify.png"), full_page=True)


def test_people_view(server, page):
    page.goto(server["url"] + "/#/people")
    page.wait_for_selector("#people-table >> text=George W Bush")
    assert page.is_visible("text=Tony Blair")
    page.screenshot(path=str(SHOTS / "04-people.png"), full_page=True)


def test_fashion_text_search_shows_results(server, page):
    page.goto(server["url"] + "/#/fashion")
    page.wait_for_selector("#fashion-text")
    assert page.is_visible("#f-gender")  # filters come from the catalog's metadata
    page.fill("#fashion-text", "a photo of a blue garment")
    page.click("#main form button[type=submit]")
    page.wait_for_selector(".results .tile", timeout=60_000)
    tiles = page.query_selector_all(".results .tile")
    assert len(tiles) >= 12
    page.wait_for_selector(".results .tile:nth-child(12) .thumb img[src^='blob:']")
    first = tiles[0].inner_text()
    assert "score" in first
    page.screenshot(path=str(SHOTS / "05-fashion.png"), full_page=True)
    # a filter narrows the grid to matching products only
    page.select_option("#f-gender", "Women")
    page.click("#main form button[type=submit]")
    page.wait_for_selector("#fashion-results >> text=results for")
    page.wait_for_timeout(500)
    women = [t.inner_text() for t in page.query_selector_all(".results .tile")]
    assert women and all("Men " not in t for t in women)
    assert not page.errors


def test_admin_page(server, page):
    page.goto(server["url"] + "/#/admin")
    page.wait_for_selector("h2:has-text('Audit log')")
    page.wait_for_selector("td >> text=identify")
    assert page.is_visible("td >> text=key:analyst")  # the audit names the API key that identified
    page.screenshot(path=str(SHOTS / "06-admin.png"), full_page=True)


def test_trend_dashboard(server, page, tmp_path):
    """Upload a table of labelled street looks, see the curves, the signals and download the report."""
    street = shared_data_dir() / "streetstyle27k" / "streetstyle27ktest.csv"
    if not street.exists():
        pytest.skip(f"StreetStyle-27K not found at {street} (set VISIONLAKE_DATA)")
    table = tmp_path / "street-looks.csv"
    table.write_text("\n".join(street.read_text().splitlines()[:1801]) + "\n")
    page.goto(server["url"] + "/#/trends")
    if page.is_visible("#signin-form"):  # when run alone
        page.fill("#key-input", server["key"])
        page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#trend-file")
    page.set_input_files("#trend-file", str(table))
    page.click("#trend-upload")
    page.wait_for_selector("#toast:has-text('Uploaded street-looks.csv')")
    assert "street-looks.csv" in page.inner_text("#trend-source option:checked")
    assert page.input_value("#trend-time") == "created_time"  # guessed from the table
    chosen = [b.inner_text() for b in page.query_selector_all("#trend-attrs .chip.on")]
    assert "major_color" in chosen and "clothing_category" in chosen
    page.click("#trend-show")
    page.wait_for_selector("#trend-chart.js-plotly-plot .main-svg", timeout=90_000)
    page.wait_for_selector("#trend-chart .scatterlayer .trace", timeout=30_000)
    curves = page.query_selector_all("#trend-chart .scatterlayer .trace")
    assert len(curves) >= 4  # at least two series, each a curve with its interval band
    assert int(page.inner_text("#trend-kpis .kpi:first-child .v").replace(",", "")) > 10
    assert page.query_selector_all("#trend-signals tbody tr")
    page.wait_for_timeout(400)  # let the forecast traces settle before the picture
    page.evaluate("document.getElementById('toast').hidden = true")
    page.screenshot(path=str(SHOTS / "07-trends.png"), full_page=True)
    # a click on a signal toggles its series in the chart
    row = page.query_selector("#trend-signals tbody tr:not(.selected)")
    if row is not None:
        uid = row.get_attribute("data-id")
        row.click()
        page.wait_for_selector(f"#trend-signals tr.selected[data-id='{uid}']")
    with page.expect_download(timeout=120_000) as dl:
        page.click("#trend-report-pdf")
    pdf = dl.value
    assert pdf.suggested_filename.endswith(".pdf")
    assert open(pdf.path(), "rb").read(5) == b"%PDF-"
    assert not page.errors
