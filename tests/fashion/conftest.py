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
def lake(tmp_path, request):
    from visionlake.lake import Lake

    lk = Lake(tmp_path / "lake")
    yield lk
    lk.close()
    if request.node.get_closest_marker("damages_lake") is None:  # issue 12: check passes on what is left
        from visionlake.check import check_lake

        rep = check_lake(lk.root)
        assert rep["ok"], f"visionlake check fails on the lake this test left: {rep['problems']}"


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
