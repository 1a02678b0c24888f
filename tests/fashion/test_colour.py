from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from visionlake.errors import BadInput
from visionlake.fashion.colour import (
    BASE_COLOUR_FAMILY,
    FAMILIES,
    analyse_colours,
    family_of_label,
    pixel_families,
    srgb_to_lab,
)


@pytest.mark.parametrize("rgb, family", [
    ((200, 30, 40), "red"),
    ((35, 45, 75), "blue"),  # navy
    ((30, 30, 32), "black"),
    ((60, 140, 70), "green"),
    ((240, 200, 40), "yellow"),
    ((130, 60, 150), "purple"),
])
def test_synthetic_garment_colour_family(rgb, family, make_garment):
    garment = make_garment
    res = analyse_colours(garment(rgb))
    assert res.family == family
    assert res.colours[0].family == family
    assert res.colours[0].share > 0.8
    assert 0.2 < res.foreground < 0.8  # the white background is not part of the garment


@pytest.mark.parametrize("rgb, family", [
    ((38, 42, 58), "blue"),  # dark navy: little chroma, but it is blue, not black
    ((92, 108, 132), "blue"),  # faded denim
    ((58, 44, 36), "brown"),  # dark brown leather
    ((150, 151, 153), "grey"),
    ((24, 24, 25), "black"),
])
def test_dark_and_desaturated_garments_keep_their_family(rgb, family, make_garment):
    assert analyse_colours(make_garment(rgb)).family == family


def _striped(garment, base: tuple[int, int, int], stripe: tuple[int, int, int], every: int) -> Image.Image:
    """A garment of ``base`` with horizontal stripes of ``stripe``: highlights, folds or a print."""
    arr = np.asarray(garment(base)).copy()
    body = (arr != 255).any(-1)
    rows = np.zeros(arr.shape[:2], dtype=bool)
    rows[::every] = True
    arr[body & rows] = stripe
    return Image.fromarray(arr)


def test_black_shoe_with_grey_highlights_stays_black(make_garment):
    # a third of a polished black shoe is grey highlight; a cluster average would call it grey
    res = analyse_colours(_striped(make_garment, (22, 22, 24), (120, 120, 122), 3))
    assert res.family == "black"
    assert 0.2 < res.family_shares["grey"] < 0.5


def test_pixel_families_split_achromatic_by_lightness_and_name_hues():
    rgb = np.array([[10, 10, 10], [128, 128, 128], [250, 250, 250], [200, 30, 40], [40, 60, 170]])
    names = [[f for f in FAMILIES if f != "multi"][i] for i in pixel_families(srgb_to_lab(rgb))]
    assert names == ["black", "grey", "white", "red", "blue"]


def test_skin_and_background_are_not_garment_colours(make_garment):
    garment = make_garment
    res = analyse_colours(garment((40, 90, 170), skin=True))
    assert res.family == "blue"
    assert res.skin_removed > 0.03
    assert all(c.family not in ("beige", "brown", "orange", "white") for c in res.colours if c.share > 0.05)


def test_white_garment_on_white_background_is_found(make_garment):
    garment = make_garment
    res = analyse_colours(garment((236, 236, 234), outline=(190, 190, 190)))
    assert res.family == "white"
    assert res.foreground > 0.1


def test_two_colour_garment_reports_both_shares(make_garment):
    garment = make_garment
    im = garment((200, 30, 40))
    arr = np.asarray(im).copy()
    arr[85:140, 40:120][(arr[85:140, 40:120] != 255).any(-1)] = (30, 60, 160)
    res = analyse_colours(Image.fromarray(arr))
    fams = {c.family: c.share for c in res.colours}
    assert fams.get("red", 0) > 0.2 and fams.get("blue", 0) > 0.2
    assert abs(sum(c.share for c in res.colours) - 1) < 1e-3


def test_transparent_png_is_composited_on_white(make_garment):
    garment = make_garment
    im = garment((200, 30, 40)).convert("RGBA")
    arr = np.asarray(im).copy()
    arr[(arr[..., :3] == 255).all(-1)] = (0, 0, 0, 0)  # transparent background, black underneath
    assert analyse_colours(Image.fromarray(arr, "RGBA")).family == "red"


def test_label_mapping_covers_the_catalogue_names():
    assert len([k for k in BASE_COLOUR_FAMILY if k != "NA"]) == 46
    assert all(v in FAMILIES for v in BASE_COLOUR_FAMILY.values() if v is not None)
    assert family_of_label("Navy Blue") == "blue"
    assert family_of_label("NA") is None
    assert family_of_label("no such colour") is None


@pytest.mark.parametrize("bad", ["not an image", np.zeros((5, 5)), Image.new("RGB", (2, 2))])
def test_bad_input(bad):
    with pytest.raises(BadInput):
        analyse_colours(bad)


@pytest.mark.shared_data
def test_real_product_photos_beat_the_mean_colour_baseline(products):
    from visionlake.bench.fashion import colour_benchmark

    report = colour_benchmark(products, id_range=(14000, 15999), limit=120)
    assert report["images"] >= 100
    assert report["colour_accuracy"] >= 0.5
    assert report["colour_accuracy"] > report["baseline_colour_accuracy"] + 0.1
