from __future__ import annotations

import os

import pytest
from sqlalchemy import func, select

from visionlake.fashion.models import FashionColour, FashionTag
from visionlake.fashion.search import search
from visionlake.ingest import ingest


@pytest.mark.shared_data
def test_ingest_product_photos_into_a_fashion_collection(lake, products, tiny_model_dir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for p in sorted((products / "images").glob("*.jpg"))[:30]:
        os.symlink(p, src / p.name)
    lake.create_collection("shop", "fashion", settings={"tagger_options": {"model": str(tiny_model_dir)}})
    report = ingest(lake, src, "shop", meta=products / "styles.csv", workers=0)
    assert report is not None
    with lake.session() as s:
        colours = s.scalar(select(func.count(func.distinct(FashionColour.image_id))))
        tagged = s.scalar(select(func.count(func.distinct(FashionTag.image_id)))
                          .where(FashionTag.source == "zero-shot"))
    assert colours >= 28 and tagged == colours  # ~1 duplicate in a 30-id range is allowed
    index = lake.index("shop", "fashion", 32)
    assert index.count() == tagged
    any_id = int(index.ids()[0])
    season = index.metadata(any_id)["season"]
    hits = search(lake, "shop", image=any_id, where={"season": season}, top=50)
    assert hits and all(h.meta["season"] == season for h in hits)
    assert hits[0].thumbnail is None or hits[0].thumbnail.endswith(".jpg")
