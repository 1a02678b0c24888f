from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select

from visionlake.analysers.base import DecodedImage, WorkerContext
from visionlake.catalog.models import Image
from visionlake.errors import BadInput, NotFound
from visionlake.fashion.analyser import ColourAnalyser, TaggerAnalyser
from visionlake.fashion.models import FashionColour, FashionHead, FashionTag
from visionlake.fashion.search import parse_where, search
from visionlake.fashion.tagger import load_model

COLOURS = {"red": (210, 30, 35), "green": (40, 170, 60), "blue": (30, 50, 200)}


def _populate(lake, make_garment, model_dir, per_colour: int = 6):
    """A fashion collection of garments in three colours, seasons alternating, analysed + persisted."""
    col = lake.create_collection("looks", "fashion")
    items = []
    with lake.session() as s:
        for name, rgb in COLOURS.items():
            for k in range(per_colour):
                shade = tuple(max(0, min(255, c + 6 * k - 15)) for c in rgb)
                meta = {"season": "Summer" if k % 2 else "Winter", "label": name, "year": str(2010 + k % 3)}
                row = Image(collection_id=col.id, sha256=f"{name}{k}".ljust(64, "0"), path=f"/src/{name}{k}.jpg",
                            meta=meta)
                s.add(row)
                s.flush()
                items.append((row.id, DecodedImage(row.path, row.sha256, make_garment(shade), meta)))
    ctx = WorkerContext(lake.root, "looks", lake.collection_dir("looks"))
    analysers = [ColourAnalyser(), TaggerAnalyser(model=str(model_dir))]
    for a in analysers:
        a.prepare(ctx)
        results = a.analyse([d for _, d in items], ctx)
        with lake.session() as s:
            for (image_id, _), res in zip(items, results, strict=True):
                a.persist(lake, s, lake.collection("looks"), image_id, res)
        a.finalize(lake, lake.collection("looks"))
    return [i for i, _ in items]


def test_ingested_collection_is_tagged_coloured_and_indexed(lake, make_garment, tiny_model_dir):
    ids = _populate(lake, make_garment, tiny_model_dir)
    with lake.session() as s:
        fams = {r.image_id: r.family for r in s.scalars(select(FashionColour))}
        tags = s.scalars(select(FashionTag).where(FashionTag.source == "zero-shot",
                                                  FashionTag.attribute == "colour")).all()
        labels = {r.id: r.meta["label"] for r in s.scalars(select(Image))}
    assert all(fams[i] == labels[i] for i in ids)
    # the tiny model sees the white background too, so only check that every image got its answer
    assert sorted(t.image_id for t in tags) == sorted(ids)
    with lake.session() as s:
        n_tags = len(s.scalars(select(FashionTag).where(FashionTag.source == "zero-shot")).all())
    assert n_tags == 8 * len(ids)  # one answer per taxonomy attribute
    header = json.loads((lake.collection_dir("looks") / "index" / "fashion" / "index.json").read_text())
    assert header["count"] == len(ids)


def test_text_and_image_search_with_filters(lake, make_garment, tiny_model_dir):
    _populate(lake, make_garment, tiny_model_dir)
    model = load_model(str(tiny_model_dir))
    res = search(lake, "looks", text="a red garment", top=4, model=model)
    assert [r.meta["label"] for r in res] == ["red"] * 4
    res = search(lake, "looks", text="a blue garment", where={"season": "Summer"}, top=10, model=model)
    assert len(res) == 9  # every Summer image, blue ones first
    assert [r.meta["label"] for r in res[:3]] == ["blue"] * 3
    assert all(r.meta["season"] == "Summer" for r in res)
    res = search(lake, "looks", image=make_garment((35, 165, 65)), where=parse_where(["year=2010", "year=2011"]),
                 top=3, model=model)
    assert [r.meta["label"] for r in res] == ["green"] * 3
    assert all(r.meta["year"] in ("2010", "2011") for r in res)
    assert res[0].path.startswith("/src/green")


def test_search_by_stored_image_works_without_a_model(lake, make_garment, tiny_model_dir):
    ids = _populate(lake, make_garment, tiny_model_dir)
    res = search(lake, "looks", image=ids[0], top=3)
    assert res[0].image_id == ids[0] and res[0].score > 0.999
    assert all(r.meta["label"] == "red" for r in res)
    with pytest.raises(NotFound):
        search(lake, "looks", image=999_999)


def test_search_bad_input(lake, make_garment, tiny_model_dir):
    lake.create_collection("empty", "fashion")
    with pytest.raises(NotFound, match="no fashion embeddings"):
        search(lake, "empty", image=1)
    with pytest.raises(NotFound):
        search(lake, "nope", image=1)
    _populate(lake, make_garment, tiny_model_dir)
    with pytest.raises(BadInput, match="exactly one"):
        search(lake, "looks", text="red", image=1)
    with pytest.raises(BadInput, match="needs a model"):
        search(lake, "looks", text="red")
    with pytest.raises(BadInput, match="dimension"):
        search(lake, "looks", vector=np.ones(5))
    with pytest.raises(BadInput):
        parse_where(["season"])


def test_trained_head_is_reported_saved_and_used(lake, make_garment, tiny_model_dir):
    from visionlake.fashion.heads import train
    from visionlake.fashion.tagger import FashionTagger, load_heads

    _populate(lake, make_garment, tiny_model_dir)
    report = train(lake, "looks", "label", folds=3)
    assert report["classes"] == 3 and report["samples"] == 18
    assert report["cv_accuracy"] >= 0.9
    assert (lake.root / report["path"]).exists()
    with lake.session() as s:
        assert s.scalar(select(FashionHead.cv_accuracy).where(FashionHead.label_column == "label")) >= 0.9
    heads = load_heads(lake.collection_dir("looks") / "heads")
    tagger = FashionTagger(load_model(str(tiny_model_dir)), heads=heads, regions=False)
    _e, tags = tagger.tag([make_garment((40, 60, 190))])
    head_tags = [t for t in tags[0] if t.source == "head"]
    assert [(t.attribute, t.value) for t in head_tags] == [("label", "blue")]
    with pytest.raises(BadInput, match="no image"):
        train(lake, "looks", "not_a_column")


def test_tagger_without_model_skips_and_colour_still_works(lake, make_garment, monkeypatch, tmp_path, caplog):
    monkeypatch.delenv("VISIONLAKE_FASHION_MODEL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("VISIONLAKE_MODEL_CACHE", str(tmp_path / "no-models"))  # no offline backbone either
    import visionlake.fashion.analyser as an

    monkeypatch.setattr(an, "_warned", False)
    ctx = WorkerContext(lake.root, "c", tmp_path)
    tagger = TaggerAnalyser()
    with caplog.at_level("WARNING"):
        tagger.prepare(ctx)
        tagger.prepare(ctx)
    assert sum("fashion tagger skipped" in r.message for r in caplog.records) == 1
    d = DecodedImage("x.jpg", "0" * 64, make_garment((200, 30, 30)))
    assert tagger.analyse([d], ctx) == [{}]
    assert ColourAnalyser().analyse([d], ctx)[0]["colour"]["family"] == "red"
