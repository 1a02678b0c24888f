"""The backbone's embedding layouts: ``rows`` for new collections, ``pooled`` kept for older ones."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from visionlake.errors import ModelUnavailable
from visionlake.fashion.backbone import (
    LAYOUT_POOLED,
    LAYOUT_ROWS,
    BackboneModel,
    rows_embedding,
)
from visionlake.fashion.backbone_convert import ONNX_NAME


def _photos() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (240, 200, 3), dtype=np.uint8)) for _ in range(3)]


def test_rows_embedding_is_unit_length_and_its_cosine_is_the_mean_of_the_parts():
    rng = np.random.default_rng(1)
    feats = [rng.uniform(0, 6, (2, 8)), rng.uniform(0, 6, (2, 3, 8)), rng.normal(0, 5, (2, 7, 4))]
    e = rows_embedding(*feats)
    assert e.shape == (2, 8 + 24 + 28)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-6)

    def unit(v):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    parts = [unit(feats[0])[:, None]] + [unit(p) for p in feats[1:]]
    mean_cos = np.mean(np.concatenate([(p[0] * p[1]).sum(-1) for p in parts]))
    assert float(e[0] @ e[1]) == pytest.approx(mean_cos, abs=1e-6)


def test_new_graph_gives_rows_by_default_and_pooled_on_request(random_lite0):
    rows = BackboneModel(random_lite0 / "new", threads=1)
    assert rows.layout == LAYOUT_ROWS and rows.describe()["layout"] == LAYOUT_ROWS
    pooled = BackboneModel(random_lite0 / "new", threads=1, layout=LAYOUT_POOLED)
    e_rows, e_pooled = rows.embed_images(_photos()), pooled.embed_images(_photos())
    assert e_pooled.shape == (3, pooled.feature_dim) and e_rows.shape == (3, rows.dim) and rows.dim > pooled.dim
    np.testing.assert_allclose(np.linalg.norm(e_rows, axis=1), 1.0, atol=1e-5)
    # the first part of a rows embedding is the pooled embedding, scaled by 1/sqrt(parts)
    np.testing.assert_allclose(e_rows[:, :pooled.dim] * np.sqrt(1 + 3 + 7 + 7), e_pooled, atol=1e-5)
    # batching does not change an image's vector
    one = BackboneModel(random_lite0 / "new", threads=1, batch_size=1).embed_images(_photos())
    np.testing.assert_allclose(one, e_rows, atol=1e-5)


def test_a_graph_converted_before_the_layout_keeps_working_pooled_and_says_how_to_upgrade(random_lite0, caplog):
    with caplog.at_level(logging.WARNING):
        m = BackboneModel(random_lite0 / "old", threads=1)
    assert m.layout == LAYOUT_POOLED and m.dim == m.feature_dim
    assert "models fetch efficientnet-lite0 --force" in caplog.text
    assert m.embed_images(_photos()).shape == (3, m.dim)
    # a collection recorded with the rows layout cannot be served by it: one clear line, not a shape error
    with pytest.raises(ModelUnavailable, match="--force"):
        BackboneModel(random_lite0 / "old", threads=1, layout=LAYOUT_ROWS)


def test_a_collections_recorded_layout_wins(random_lite0, monkeypatch):
    """Vectors stored before the layout existed (record without 'layout') keep being queried as pooled."""
    import visionlake.fashion.backbone as bb
    from visionlake.fashion.tagger import choose_model, model_record

    monkeypatch.setattr(bb, "backbone_file", lambda: random_lite0 / "new" / ONNX_NAME)
    old_record = {"name": "efficientnet-lite0", "backend": "onnx-backbone", "dim": 48, "text": False}
    assert choose_model(recorded=old_record).layout == LAYOUT_POOLED
    fresh = choose_model("efficientnet-lite0")
    assert fresh.layout == LAYOUT_ROWS
    rec = model_record(fresh, "efficientnet-lite0")
    assert rec["layout"] == LAYOUT_ROWS and rec["dim"] == fresh.dim
    assert choose_model(recorded=rec).layout == LAYOUT_ROWS
