"""The learned colour head: features of the garment pixels, a model chosen by CV, right on clear cases."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from visionlake.fashion.colour_head import colour_features, fit_colour_head

COLOURS = {"red": (200, 30, 40), "blue": (30, 60, 190), "black": (25, 25, 28), "green": (40, 150, 60)}


def product(rgb: tuple[int, int, int], rng: np.random.Generator) -> Image.Image:
    """A garment-like blob of one colour, slightly varied, on a white studio background."""
    im = Image.new("RGB", (96, 96), (250, 250, 250))
    jitter = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in rgb)
    ImageDraw.Draw(im).rounded_rectangle((20 + int(rng.integers(0, 8)), 14, 76, 86), 12, fill=jitter)
    return im


def test_features_are_fixed_length_and_finite() -> None:
    rng = np.random.default_rng(0)
    a, b = colour_features(product(COLOURS["red"], rng)), colour_features(product(COLOURS["blue"], rng))
    assert a.shape == b.shape and np.isfinite(a).all() and not np.allclose(a, b)


def test_head_learns_colour_labels() -> None:
    rng = np.random.default_rng(1)
    X, y = [], []
    for name, rgb in COLOURS.items():
        for _ in range(10):
            X.append(colour_features(product(rgb, rng)))
            y.append(name)
    head = fit_colour_head(np.array(X), y)
    assert head.C > 0 and head.cv_accuracy > 0.9
    test = [colour_features(product(rgb, rng)) for rgb in COLOURS.values()]
    assert head.predict(np.array(test)) == list(COLOURS)
