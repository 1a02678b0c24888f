"""``bench fashion``'s backbone part on a slice of the real product photos (heavy: ~400 photos embedded)."""

from __future__ import annotations

import pytest


@pytest.mark.heavy
def test_backbone_bench_beats_majority_on_real_photos(products, real_model):
    real_model("efficientnet-lite0")
    from visionlake.bench.fashion_backbone import backbone_benchmark
    from visionlake.fashion.backbone import BackboneModel

    report = backbone_benchmark(products, (10300, 10450), BackboneModel(threads=2), limit=400)
    assert report["test_photos"] > 50 and report["train_photos"] > 200
    assert report["article_accuracy"] > report["article_majority"] + 0.15
    assert report["usage_accuracy"] is not None and 0 < report["usage_accuracy"] <= 1
    assert report["search_precision_at_10"] > 3 * report["search_precision_chance"]
    assert report["embed_images_per_s"] > 0
