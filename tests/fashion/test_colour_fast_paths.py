"""The colour pipeline's fast paths give the very bits of the plain computations they replace.

Ingestion runs the colour analysis on every photo (it was the largest CPU cost of the products
ingest), so three steps were made cheaper without changing a result: 8-bit sRGB is linearised by a
256-entry lookup table, k-means takes weighted means without ``np.average``'s checks, and the centre
weight is computed for the kept pixels only. Each is compared bit for bit with the computation it
replaces (also checked on 700 product photos against the previous code: same garment pixels, weights
and colour results).
"""

from __future__ import annotations

import numpy as np
import pytest

from visionlake.fashion import colour
from visionlake.fashion.colour import ColourSettings, analyse_colours, garment_pixels, srgb_to_lab


def test_8bit_lookup_equals_the_power_function_for_every_value_and_alignment() -> None:
    values = np.tile(np.arange(256, dtype=np.uint8), 67)[:, None].repeat(3, 1)
    rng = np.random.default_rng(0)
    for arr in (values, values[1:], values[5:], rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
                rng.integers(0, 256, (7, 13, 3), dtype=np.uint8)):
        fast = srgb_to_lab(arr)  # uint8: the lookup
        plain = srgb_to_lab(arr.astype(np.float32))  # float: the power function
        assert fast.dtype == plain.dtype == np.float32
        assert np.array_equal(fast, plain)


@pytest.mark.parametrize("n", [1, 2, 17, 2500])
def test_weighted_mean_is_np_average_bit_for_bit(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(50, 30, (n, 3))
    w = rng.uniform(1e-6, 1, n)
    assert np.array_equal(colour._weighted_mean(x, w), np.average(x, axis=0, weights=w))
    with pytest.raises(ZeroDivisionError):
        colour._weighted_mean(x, np.zeros(n))


def test_centre_weights_of_the_kept_pixels_are_the_full_grid_formula() -> None:
    """A busy photo keeps every pixel (no single background colour, no skin), under the sample size, so
    its weights are the whole grid's Gaussian in row-major order."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    rgb[..., 2] = 255  # blue-ish: no skin-toned pixel (skin needs r > g > b)
    s = ColourSettings()
    g = garment_pixels(rgb, s)
    assert len(g.lab) == 40 * 30
    yy, xx = np.mgrid[0:40, 0:30]
    sig = s.centre_sigma * 40
    expected = np.exp(-(((yy - 19.5) ** 2) + ((xx - 14.5) ** 2)) / (2 * sig**2))
    assert np.array_equal(g.weight, expected[np.ones((40, 30), bool)])


def test_results_unchanged_on_drawn_garments(make_garment) -> None:
    """Fixed expectations from before the fast paths (families and colour names of plain garments)."""
    for rgb, family in (((200, 30, 30), "red"), ((30, 60, 160), "blue"), ((20, 20, 20), "black")):
        res = analyse_colours(make_garment(rgb))
        assert res.family == family
        assert res.colours and abs(sum(c.share for c in res.colours) - 1) < 1e-3
