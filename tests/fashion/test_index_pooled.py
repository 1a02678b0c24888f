"""A ``rows``-layout collection's similarity index holds the pooled part of each stored vector.

The catalog keeps the full 8,704-d rows vector (heads train on it); the index holds its first 1280
dims re-normalised, which is the ``pooled``-layout vector of the same photo: search answers as a
pooled collection would, for a sixth of the memory and scan. A random-weight Lite0 graph stands in for
the real one (same shapes, same outputs).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from visionlake.fashion.backbone import BACKBONE_NAME, LAYOUT_POOLED, LAYOUT_ROWS, BackboneModel
from visionlake.fashion.backbone_convert import ONNX_NAME
from visionlake.fashion.index_vectors import index_vectors

PHOTOS = 8


def _photo(i: int) -> Image.Image:
    """Distinct photos: a coloured block on a noisy background, moving with ``i``."""
    rng = np.random.default_rng(i)
    a = rng.integers(0, 255, (200, 180, 3), dtype=np.uint8)
    a[20 * (i % 5): 20 * (i % 5) + 90, 30:150] = (40 * i % 255, 255 - 30 * i % 255, 90)
    return Image.fromarray(a)


@pytest.fixture(scope="module")
def ingested(random_lite0, tmp_path_factory):
    """The same photos ingested into a rows collection (the default) and a pooled one (built once)."""
    import visionlake.fashion.backbone as bb
    from visionlake.fashion.tagger import MODEL_SETTING
    from visionlake.ingest import ingest
    from visionlake.lake import Lake

    root = tmp_path_factory.mktemp("pooled_index")
    photos = root / "photos"
    photos.mkdir()
    for i in range(PHOTOS):
        _photo(i).save(photos / f"{i}.png")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bb, "backbone_file", lambda: random_lite0 / "new" / ONNX_NAME)
        lake = Lake(root / "lake")
        opts = {"tagger_options": {"model": BACKBONE_NAME}}
        lake.create_collection("rows", "fashion", settings=opts)
        lake.create_collection("pooled", "fashion", settings={
            **opts, MODEL_SETTING: {"name": BACKBONE_NAME, "backend": "onnx-backbone", "layout": LAYOUT_POOLED}})
        for name in ("rows", "pooled"):
            report = ingest(lake, photos, name, workers=0)
            assert report.get("failed", 0) == 0 and report["ingested"] == PHOTOS, report
        lake.close()
    return root / "lake"


@pytest.fixture()
def two_lakes(ingested, random_lite0, tmp_path, monkeypatch):
    """A copy of :func:`ingested` per test (tests rebuild and damage indexes)."""
    import shutil

    import visionlake.fashion.backbone as bb
    from visionlake.lake import Lake

    monkeypatch.setattr(bb, "backbone_file", lambda: random_lite0 / "new" / ONNX_NAME)
    shutil.copytree(ingested, tmp_path / "lake", ignore=shutil.ignore_patterns(".lock"))
    lake = Lake(tmp_path / "lake")
    yield lake
    lake.close()


def _pooled_dim(lake) -> int:
    from visionlake.fashion.tagger import MODEL_SETTING

    return int(lake.collection("rows").settings[MODEL_SETTING]["pooled_dim"])


def _full_dim(lake) -> int:
    from visionlake.fashion.tagger import MODEL_SETTING

    return int(lake.collection("rows").settings[MODEL_SETTING]["dim"])


def _ids_by_name(lake, collection: str) -> dict[str, int]:
    return {im.path.rsplit("/", 1)[-1]: im.id for im in lake.images(collection)}


def test_index_vector_of_a_rows_embedding_is_the_pooled_embedding(random_lite0):
    rows = BackboneModel(random_lite0 / "new", threads=1)
    pooled = BackboneModel(random_lite0 / "new", threads=1, layout=LAYOUT_POOLED)
    from visionlake.fashion.tagger import model_record

    pics = [_photo(i) for i in range(3)]
    got = index_vectors(rows.embed_images(pics), model_record(rows, BACKBONE_NAME))
    assert got.shape == (3, rows.feature_dim) and rows.dim > rows.feature_dim
    np.testing.assert_allclose(got, pooled.embed_images(pics), atol=1e-5)
    # a pooled collection's vectors (and any other model's) are indexed as stored
    e = pooled.embed_images(pics)
    np.testing.assert_array_equal(index_vectors(e, model_record(pooled, BACKBONE_NAME)), e)
    siglip = {"name": "marqo-fashionSigLIP", "backend": "onnx", "dim": 768, "text": True}  # text-capable: as stored
    text_vecs = np.random.default_rng(0).standard_normal((2, 768)).astype(np.float32)
    np.testing.assert_array_equal(index_vectors(text_vecs, siglip), text_vecs)


def test_rows_collection_indexes_the_pooled_part_and_searches_like_a_pooled_one(two_lakes):
    from visionlake.fashion.heads import collection_embeddings
    from visionlake.fashion.search import search, space_dim
    from visionlake.fashion.tagger import MODEL_SETTING, model_for_collection

    lake = two_lakes
    record = lake.collection("rows").settings[MODEL_SETTING]
    pooled_dim = int(record["pooled_dim"])
    assert record["layout"] == LAYOUT_ROWS and record["dim"] > record["pooled_dim"] == pooled_dim
    assert space_dim(lake, "rows") == pooled_dim == space_dim(lake, "pooled")
    # the catalog keeps the full rows vector: heads are trained from it
    _ids, vecs, _ = collection_embeddings(lake, "rows")
    assert vecs.shape == (PHOTOS, record["dim"])

    rows_ids, pooled_ids = _ids_by_name(lake, "rows"), _ids_by_name(lake, "pooled")
    to_name = {v: k for k, v in rows_ids.items()} | {v: k for k, v in pooled_ids.items()}

    def names(results):
        return [to_name[r.image_id] for r in results]

    for name in ("0.png", "3.png"):  # search by image id (similar looks)
        a = search(lake, "rows", image=rows_ids[name], top=5)
        b = search(lake, "pooled", image=pooled_ids[name], top=5)
        assert names(a) == names(b) and names(a)[0] == name
        np.testing.assert_allclose([r.score for r in a], [r.score for r in b], atol=1e-4)
    query = _photo(PHOTOS + 1)  # search by upload, each collection with its own model
    a = search(lake, "rows", image=query, top=5, model=model_for_collection(lake, "rows"))
    b = search(lake, "pooled", image=query, top=5, model=model_for_collection(lake, "pooled"))
    assert names(a) == names(b)
    np.testing.assert_allclose([r.score for r in a], [r.score for r in b], atol=1e-4)


def test_rebuild_from_the_catalog_gives_the_same_index_and_check_is_clean(two_lakes):
    from visionlake.check import check_lake, repair_lake
    from visionlake.fashion.search import SPACE
    from visionlake.lake import Lake

    lake = two_lakes
    dim = _pooled_dim(lake)
    ix = lake.index("rows", SPACE, dim)
    ids = np.sort(ix.ids())
    before = ix.reconstruct(ids)
    root = lake.root
    lake.close()
    assert check_lake(root)["problems"] == []
    folder = root / "collections" / "rows" / "index" / SPACE
    (folder / "index.json").write_text("{damaged")
    assert check_lake(root)["problems"]
    repair_lake(root)
    assert check_lake(root)["problems"] == []
    again = Lake(root)
    try:
        ix2 = again.index("rows", SPACE, dim)
        assert ix2.dim == dim
        np.testing.assert_array_equal(np.sort(ix2.ids()), ids)
        np.testing.assert_allclose(ix2.reconstruct(ids), before, atol=1e-6)
    finally:
        again.close()


def test_an_index_built_with_full_rows_vectors_is_rebuilt_not_a_crash(two_lakes):
    """Lakes indexed from main for an hour held the full rows vectors: check says so, resync rebuilds."""
    from visionlake.check import check_lake, repair_lake
    from visionlake.fashion.models import FashionEmbedding
    from visionlake.fashion.search import SPACE, search
    from visionlake.index.faiss_index import FaissIndex
    from visionlake.lake import Lake

    lake = two_lakes
    dim, full = _pooled_dim(lake), _full_dim(lake)
    with lake.session() as s:
        stored = {e.image_id: np.frombuffer(e.vector, np.float32) for e in s.query(FashionEmbedding)
                  if e.image_id in set(_ids_by_name(lake, "rows").values())}
    root = lake.root
    lake.close()
    folder = root / "collections" / "rows" / "index" / SPACE
    for f in folder.iterdir():
        if f.name != ".lock":
            f.unlink()
    old = FaissIndex(folder, dim=full, metric="cosine")  # what the index held before this change
    ids = sorted(stored)
    old.add(ids, np.vstack([stored[i] for i in ids]), [{} for _ in ids])
    old.save()
    old.close()
    problems = check_lake(root)["problems"]
    assert any(f"{full}-d" in p["problem"] and f"{dim}-d" in p["problem"] for p in problems), problems
    repair_lake(root)
    assert check_lake(root)["problems"] == []
    assert json.loads((folder / "index.json").read_text())["dim"] == dim

    # and opening the lake (every command's resync) repairs it too, without `repair`
    for f in folder.iterdir():
        if f.name != ".lock":
            f.unlink()
    old = FaissIndex(folder, dim=full, metric="cosine")
    old.add(ids, np.vstack([stored[i] for i in ids]), [{} for _ in ids])
    old.save()
    old.close()
    again = Lake(root)
    try:
        hits = search(again, "rows", image=ids[0], top=3)
        assert hits[0].image_id == ids[0] and len(hits) == 3
        assert again.index("rows", SPACE, dim).dim == dim
    finally:
        again.close()
    assert json.loads((folder / "index.json").read_text())["dim"] == dim
    assert check_lake(root)["problems"] == []


def test_a_milvus_collection_of_full_rows_vectors_is_rebuilt_with_the_pooled_part(tmp_path):
    """Synthetic rows vectors (3 parts of 4 dims) in a Milvus Lite lake: the full-width collection is
    dropped and filled again from the catalog with the pooled part."""
    pytest.importorskip("milvus_lite", reason="milvus-lite (extra milvus) not installed")
    from sqlalchemy import insert

    from visionlake.catalog.models import Image as ImageRow
    from visionlake.fashion.models import FashionEmbedding
    from visionlake.fashion.resync import sync_fashion
    from visionlake.fashion.search import search
    from visionlake.fashion.tagger import MODEL_SETTING
    from visionlake.index.milvus_index import MilvusIndex, existing_dim
    from visionlake.lake import Lake

    rng = np.random.default_rng(3)
    full = rng.standard_normal((6, 12)).astype(np.float32)
    full /= np.linalg.norm(full, axis=1, keepdims=True)
    record = {"name": BACKBONE_NAME, "backend": "onnx-backbone", "dim": 12, "text": False,
              "layout": LAYOUT_ROWS, "pooled_dim": 4}
    db = f"milvus-lite:{tmp_path / 'm.db'}"
    lake = Lake(tmp_path / "lake")
    lake.set_setting("index", db)
    col = lake.create_collection("rows", "fashion", settings={MODEL_SETTING: record})
    with lake.session() as s:
        s.execute(insert(ImageRow), [{"id": 10 + i, "collection_id": col.id, "sha256": f"{i:064d}",
                                      "path": f"s/{i}.jpg", "meta": {}} for i in range(6)])
        s.execute(insert(FashionEmbedding), [{"image_id": 10 + i, "model": BACKBONE_NAME, "dim": 12,
                                              "vector": full[i].tobytes()} for i in range(6)])
    old = MilvusIndex(db, dim=12, metric="cosine", collection="rows__fashion")  # the index before this change
    old.add(list(range(10, 16)), full, [{} for _ in range(6)])
    old.save()
    try:
        report = sync_fashion(lake, "rows")
        assert report["count"] == 6 and existing_dim(db, "rows__fashion") == 4
        want = index_vectors(full, record)
        hits = search(lake, "rows", vector=full[0], top=6)  # a full rows query is mapped the same way
        order = np.argsort(-(want @ want[0]))
        assert [h.image_id for h in hits] == [10 + int(i) for i in order]
    finally:
        lake.close()
