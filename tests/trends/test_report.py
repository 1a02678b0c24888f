"""Report from a lake collection with fashion tags: HTML + PDF, thumbnails, and a real browser check."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from visionlake.cli import app
from visionlake.cli.common import run_cli

from .conftest import make_looks

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


def make_lake(root: Path) -> None:
    """A lake whose 'looks' collection has images, thumbnails, city metadata and fashion tags."""
    from PIL import Image as PILImage

    from visionlake.catalog.models import Image
    from visionlake.fashion.models import FashionTag
    from visionlake.lake import Lake

    lake = Lake(root)
    col = lake.create_collection("looks", purpose="fashion")
    looks = make_looks(n_months=30, per_month=30)
    colours = {"satin": (200, 60, 120), "denim": (40, 70, 160), "cotton": (230, 230, 220)}
    thumbs = root / "collections" / "looks" / "thumbs"
    thumbs.mkdir(parents=True, exist_ok=True)
    with lake.session() as s:
        for i, r in looks.iterrows():
            rel: str | None = f"collections/looks/thumbs/{i}.jpg"
            if i < 600 or r["fabric"] == "satin" or i % 7 == 0:
                PILImage.new("RGB", (64, 64), colours[r["fabric"]]).save(root / rel)
            else:  # no thumbnail written (to keep the test fast): the catalog says so, as ingest would
                rel = None
            img = Image(collection_id=col.id, sha256=f"{i:064d}", path=f"/photos/{i}.jpg", thumbnail=rel,
                        meta={"created_time": r["created"], "city": r["city"]})
            s.add(img)
            s.flush()
            for attr in ("fabric", "knit", "length"):
                s.add(FashionTag(image_id=img.id, attribute=attr, value=r[attr], confidence=0.9))


def run(args: list[str]) -> int:
    old = sys.argv
    sys.argv = ["visionlake", *args]
    try:
        return run_cli(app)
    finally:
        sys.argv = old


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    make_lake(root)
    out = root / "report" / "report.html"
    code = run(["trends", "report", "--lake", str(root), "--collection", "looks", "--by", "month",
                "--segment", "city", "--horizon", "6", "--top", "3", "--out", str(out)])
    assert code == 0
    return out


def test_lake_observations(tmp_path: Path) -> None:
    from visionlake.lake import Lake
    from visionlake.trends.lake_source import observations_from_lake

    make_lake(tmp_path)
    obs = observations_from_lake(Lake(tmp_path, create=False), "looks")
    assert {"look_id", "time", "attribute", "value", "confidence", "city", "thumbnail"} <= set(obs.columns)
    assert obs["look_id"].nunique() == 900


def test_report_files(report: Path) -> None:
    page = report.read_text()
    assert "<script src=" not in page.replace('"', "'").replace("<script src='data:", "")  # JS inlined
    assert "data:image/jpeg;base64," in page
    assert "fabric=satin" in page and "rising" in page
    assert report.with_suffix(".pdf").read_bytes()[:4] == b"%PDF"


@pytest.mark.browser
def test_report_renders_in_chromium(report: Path) -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium not installed (apt-get install -y chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        remote: list[str] = []
        page.on("request", lambda r: remote.append(r.url) if r.url.startswith("http") else None)
        page.goto(report.as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
        charts = page.locator(".js-plotly-plot").count()
        traces = page.locator(".js-plotly-plot .scatterlayer .trace").count()
        thumbs = page.locator(".thumbs img").evaluate_all("els => els.filter(e => e.naturalWidth > 0).length")
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "trends_report.png"), full_page=False)
        browser.close()
    assert not errors, errors
    assert not remote, remote  # no CDN, nothing fetched from the network
    assert charts >= 2
    assert traces >= 3 * charts  # band, curve and forecast in every chart
    assert thumbs >= 2
