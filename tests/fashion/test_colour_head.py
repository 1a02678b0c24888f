"""The learned colour head: features of the garment pixels, a model chosen by CV, right on clear cases."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageDraw
from threadpoolctl import threadpool_limits

from visionlake.fashion.colour_head import CANDIDATES, colour_features, fit_colour_head

COLOURS = {"red": (200, 30, 40), "blue": (30, 60, 190), "black": (25, 25, 28), "green": (40, 150, 60)}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny fits: OpenMP threads of the tree models only oversubscribe a shared machine (as the bench does)."""
    with threadpool_limits(limits=1):
        yield


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
    light = {"logreg C=0.1": CANDIDATES["logreg C=0.1"], "logreg C=0.003": ("logreg", {"C": 0.003})}
    head = fit_colour_head(np.array(X), y, candidates=light)
    assert head.name in head.cv_table and head.cv_accuracy > 0.9
    test = [colour_features(product(rgb, rng)) for rgb in COLOURS.values()]
    assert head.predict(np.array(test)) == list(COLOURS)


def test_head_is_the_cv_winner_on_training_rows_only() -> None:
    """The chosen model is the argmax of the CV table computed on the rows it was given, and it changes
    when the training rows call for it: a label that is a non-linear function of the features (an XOR of
    two histogram corners) is won by the trees, an oblique linear one by the logistic regression."""
    rng = np.random.default_rng(2)
    n = 200
    X = rng.normal(size=(n, 6)).astype(np.float32)
    xor = np.where((X[:, 0] > 0) ^ (X[:, 1] > 0), "navy", "black").tolist()
    linear = np.where(X.sum(1) > 0, "navy", "black").tolist()  # oblique: one direction, hard for trees
    cands = {"logreg C=1": ("logreg", {"C": 1.0}),
             "hgb": ("hgb", {"learning_rate": 0.2, "max_leaf_nodes": 7, "max_iter": 30})}
    for y, winner in ((xor, "hgb"), (linear, "logreg C=1")):
        head = fit_colour_head(X, y, candidates=cands)
        assert set(head.cv_table) == set(cands)
        assert head.name == max(head.cv_table, key=head.cv_table.get) == winner
        assert head.cv_accuracy == head.cv_table[winner]
    assert fit_colour_head(X, xor, candidates=cands).predict(np.array([[1, 1, 0, 0, 0, 0]])) == ["black"]


def test_learned_colour_bench_scores_only_unseen_photos(tmp_path, monkeypatch) -> None:
    """The bench trains on one id range, drops test photos whose bytes it trained on, and reports both."""
    from visionlake.bench import fashion as bench
    from visionlake.errors import ModelUnavailable
    from visionlake.fashion import colour_training

    def unavailable(threads=None):
        raise ModelUnavailable("no backbone here")

    monkeypatch.setattr(colour_training, "load_backbone", unavailable)
    rng = np.random.default_rng(3)
    (tmp_path / "images").mkdir()
    rows = ["id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName"]
    ids = [*range(100, 112), *range(200, 206)]
    for i in ids:
        name = ("red", "Red") if i % 2 else ("blue", "Blue")
        product(COLOURS[name[0]], rng).save(tmp_path / "images" / f"{i}.jpg", quality=95)
        rows.append(f"{i},Men,Apparel,Topwear,Tshirts,{name[1]},Summer,2012,Casual,A shirt")
    (tmp_path / "images" / "205.jpg").write_bytes((tmp_path / "images" / "101.jpg").read_bytes())  # a duplicate
    (tmp_path / "styles.csv").write_text("\n".join(rows) + "\n")
    rep = bench.learned_colour_benchmark(tmp_path, (100, 111), (200, 299))
    assert rep["colour_head_features"] == list(colour_head_parts_without_backbone())
    assert rep["colour_head_train_images"] == 12 and rep["colour_learned_duplicates_dropped"] == 1
    assert rep["colour_learned_images"] == 5 and rep["colour_accuracy_learned"] == 1.0
    assert rep["colour_accuracy_learned_by_ids"] == {"0-999": 1.0}


def colour_head_parts_without_backbone() -> tuple[str, ...]:
    from visionlake.fashion.colour_head import HEAD_PARTS_NO_BACKBONE

    return HEAD_PARTS_NO_BACKBONE
