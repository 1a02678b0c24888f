"""Shared fixtures: a tiny ONNX model folder built on the fly, a fresh lake, synthetic garment photos."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from visionlake.config import shared_data_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    pytest.importorskip("onnx", reason="the onnx package (dev extra) builds the tiny test model")
    from visionlake.fashion.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture()
def lake(tmp_path):
    """A fresh lake; the suite's autouse ``check_test_lakes`` checks what the test leaves (issue 12)."""
    from visionlake.lake import Lake

    lk = Lake(tmp_path / "lake")
    yield lk
    lk.close()


def garment(colour: tuple[int, int, int], size: int = 160, bg: tuple[int, int, int] = (255, 255, 255),
            skin: bool = False, outline: tuple[int, int, int] | None = None) -> Image.Image:
    """A T-shirt-like shape of one colour on a light background, optionally with skin-tone arms/face."""
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    s = size / 160
    body = [(50 * s, 30 * s), (110 * s, 30 * s), (140 * s, 60 * s), (120 * s, 75 * s), (110 * s, 65 * s),
            (110 * s, 140 * s), (50 * s, 140 * s), (50 * s, 65 * s), (40 * s, 75 * s), (20 * s, 60 * s)]
    if skin:
        d.ellipse([65 * s, 2 * s, 95 * s, 32 * s], fill=(224, 172, 140))  # face
        d.rectangle([22 * s, 70 * s, 34 * s, 110 * s], fill=(214, 160, 128))  # arm
        d.rectangle([126 * s, 70 * s, 138 * s, 110 * s], fill=(214, 160, 128))
    d.polygon(body, fill=colour, outline=outline)
    return im


@pytest.fixture(scope="session")
def products() -> Path:
    folder = shared_data_dir() / "fashion_products"
    if not (folder / "styles.csv").exists():
        pytest.skip(f"product photos not available at {folder} (set VISIONLAKE_DATA)")
    return folder


@pytest.fixture(scope="session")
def make_garment():
    """The :func:`garment` factory, as a fixture (tests folders are not packages)."""
    return garment


def trousers(colour: tuple[int, int, int], size: int = 160) -> Image.Image:
    """Two legs joined at a waistband, on white."""
    im = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(im)
    s = size / 160
    d.polygon([(45 * s, 10 * s), (115 * s, 10 * s), (125 * s, 150 * s), (88 * s, 150 * s), (80 * s, 60 * s),
               (72 * s, 150 * s), (35 * s, 150 * s)], fill=colour)
    return im


def handbag(colour: tuple[int, int, int], size: int = 160) -> Image.Image:
    """A trapezoid bag with an arched handle, on white."""
    im = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(im)
    s = size / 160
    d.arc([50 * s, 20 * s, 110 * s, 90 * s], 180, 360, fill=colour, width=max(2, int(8 * s)))
    d.polygon([(30 * s, 60 * s), (130 * s, 60 * s), (145 * s, 140 * s), (15 * s, 140 * s)], fill=colour)
    return im


LOOK_COLOURS = [(200, 30, 40), (30, 60, 190), (40, 150, 60), (20, 20, 20), (230, 200, 40), (120, 40, 140)]
LOOK_KINDS = {"Tshirts": garment, "Trousers": trousers, "Handbags": handbag}


@pytest.fixture(scope="session")
def look_kinds() -> dict:
    """The drawn garment kinds by articleType name, as a fixture: a test module importing ``conftest``
    by name would get whichever of the suite's three conftest modules was imported last."""
    return LOOK_KINDS


@pytest.fixture(scope="session")
def backbone_lake(tmp_path_factory, real_model):
    """One small lake per session, ingested through the real pipeline with the real EfficientNet-Lite0:
    18 looks (3 article types x 6 colours) named ``<id>.png`` with a ``looks.csv`` metadata table."""
    real_model("efficientnet-lite0")
    from visionlake.ingest import ingest
    from visionlake.lake import Lake

    root = tmp_path_factory.mktemp("backbone_lake")
    photos = root / "photos"
    photos.mkdir()
    rows = ["id,articleType,colourName,usage"]
    n = 100
    for kind, draw in LOOK_KINDS.items():
        for k, rgb in enumerate(LOOK_COLOURS):
            n += 1
            draw(rgb, size=128).save(photos / f"{n}.png")
            rows.append(f"{n},{kind},c{k},{'Sports' if kind == 'Tshirts' else 'Casual'}")
    (root / "looks.csv").write_text("\n".join(rows) + "\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("VISIONLAKE_FASHION_MODEL", raising=False)
        mp.setenv("HF_HUB_OFFLINE", "1")  # no FashionSigLIP: the backbone must be chosen
        mp.setenv("HF_HOME", str(root / "hf"))
        lake = Lake(root / "lake")
        lake.create_collection("looks", "fashion")
        report = ingest(lake, photos, "looks", meta=root / "looks.csv", workers=0)
        lake.close()
    assert report.get("failed", 0) == 0, report
    return root


@pytest.fixture(scope="session")
def random_lite0(tmp_path_factory):
    """A Lite0-shaped graph with random weights (the real file is not needed for the layout's logic)."""
    from pth_writer import random_state, write_legacy

    from visionlake.fashion.backbone import ROWS_OUTPUTS
    from visionlake.fashion.backbone_convert import LITE0, ONNX_NAME, WEIGHTS_NAME, convert

    root = tmp_path_factory.mktemp("lite0")
    write_legacy(root / WEIGHTS_NAME, random_state(LITE0, seed=7))
    convert(root, root / "new", check=False)
    import onnx

    old = onnx.load(str(root / "new" / ONNX_NAME))  # what visionlake converted before the layout existed
    keep = [o for o in old.graph.output if o.name not in ROWS_OUTPUTS]
    del old.graph.output[:]
    old.graph.output.extend(keep)
    (root / "old").mkdir()
    onnx.save(old, str(root / "old" / ONNX_NAME))
    return root
