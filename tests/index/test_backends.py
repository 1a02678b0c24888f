"""One behaviour suite for every vector engine: FAISS (flat, IVF, IVF-PQ with re-rank) and Milvus Lite.

A user switching the lake setting ``index`` from ``faiss`` to a Milvus URI must see the same hits,
the same filters, the same counts and, above all, the same erasure: a removed id never comes back,
not in a search, not in ``ids()``, not after a save and a reopen.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from visionlake.index import FaissIndex, VectorIndex

DIM = 32
N = 600

_counter = itertools.count()


def _vectors(n: int = N, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors (30 'people' x 20 photos): near ties, as with real face templates."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[np.arange(n) % 30] + 0.12 * rng.standard_normal((n, DIM)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _exact(vectors: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> tuple[list[int], list[float]]:
    sims = vectors @ (q / np.linalg.norm(q))
    order = np.argsort(-sims)[:k]
    return [int(ids[j]) for j in order], [float(sims[j]) for j in order]


@pytest.fixture(scope="module")
def milvus_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    path = tmp_path_factory.mktemp("milvus") / "backends.db"
    yield path
    from visionlake.index import milvus_index

    client = milvus_index._clients.pop(str(path.resolve()), None)
    if client is not None:
        client.close()


BACKENDS = ["faiss-flat", "faiss-ivf", "faiss-ivfpq", "faiss-pqfs", "milvus-lite"]


@pytest.fixture(params=BACKENDS)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., VectorIndex]:
    """Factory ``make(dim=DIM, metric='cosine')`` of an empty index of the parametrised backend; ``make.reopen(ix)``
    opens the same stored index anew (a fresh client for Milvus, a fresh load from disk for FAISS)."""
    backend = request.param
    name = f"t{next(_counter)}"

    if backend == "milvus-lite":
        db = request.getfixturevalue("milvus_db")
        from visionlake.index import milvus_index
        from visionlake.index.milvus_index import MilvusIndex

        def factory(dim: int = DIM, metric: str = "cosine") -> VectorIndex:
            return MilvusIndex(f"milvus-lite:{db}", dim=dim, metric=metric, collection=name)  # type: ignore[arg-type]

        def reopen(ix: VectorIndex) -> VectorIndex:
            client = milvus_index._clients.pop(str(db.resolve()), None)
            if client is not None:
                client.close()
            return MilvusIndex(f"milvus-lite:{db}", dim=ix.dim, metric=ix.metric, collection=name)
    else:
        kind = backend.split("-", 1)[1]

        def factory(dim: int = DIM, metric: str = "cosine") -> VectorIndex:
            return FaissIndex(tmp_path / name, dim=dim, metric=metric, kind=kind)  # type: ignore[arg-type]

        def reopen(ix: VectorIndex) -> VectorIndex:
            return FaissIndex(tmp_path / name, dim=ix.dim, metric=ix.metric, kind=kind)

    factory.reopen = reopen  # type: ignore[attr-defined]
    factory.backend = backend  # type: ignore[attr-defined]
    return factory


def _filled(make: Callable[..., VectorIndex]) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    vecs = _vectors()
    ids = np.arange(1000, 1000 + N, dtype=np.int64)
    ix = make()
    meta = [{"person": int(i % 30), "known": 1 if i % 2 else 0, "camera": f"c{i % 7}"} for i in range(N)]
    if isinstance(ix, FaissIndex) and ix.requested_kind != "flat":
        ix.build(ids, vecs, nlist=16)
        for i, m in zip(ids.tolist(), meta, strict=True):
            ix._set_meta(i, m)
    else:
        ix.add(ids, vecs, meta)
    return ix, ids, vecs


def test_search_returns_exact_top_k_best_first(make: Callable[..., VectorIndex]) -> None:
    ix, ids, vecs = _filled(make)
    q = _vectors(5, seed=7)
    hits = ix.search(q, k=5)
    assert len(hits) == 5
    agree = 0
    for row, qv in zip(hits, q, strict=True):
        want_ids, want_scores = _exact(vecs, ids, qv, 5)
        assert len(row) == 5
        scores = [h.score for h in row]
        assert scores == sorted(scores, reverse=True), "hits must come best first"
        assert row[0].id == want_ids[0]
        assert row[0].score == pytest.approx(want_scores[0], abs=0.02)  # PQ + re-rank may round scores
        agree += len({h.id for h in row} & set(want_ids))
    assert agree >= 23  # 25 expected; ANN kinds may swap a near tie at rank 5


def test_self_query_finds_itself_with_cosine_one(make: Callable[..., VectorIndex]) -> None:
    ix, ids, vecs = _filled(make)
    hits = ix.search(vecs[[3, 400]] * 3.0, k=1)  # scale must not matter for cosine
    assert [h[0].id for h in hits] == [int(ids[3]), int(ids[400])]
    assert hits[0][0].score == pytest.approx(1.0, abs=0.02)


def test_l2_metric_scores_are_euclidean_distances(make: Callable[..., VectorIndex]) -> None:
    if make.backend not in ("faiss-flat", "milvus-lite"):  # type: ignore[attr-defined]
        pytest.skip("metric semantics are engine-level; one FAISS kind is enough")
    ix = make(dim=4, metric="l2")
    ix.add([1, 2, 3], np.array([[0, 0, 0, 0], [3, 4, 0, 0], [1, 0, 0, 0]], dtype=np.float32))
    hits = ix.search(np.zeros((1, 4), dtype=np.float32), k=3)[0]
    assert [h.id for h in hits] == [1, 3, 2]
    assert [h.score for h in hits] == pytest.approx([0.0, 1.0, 5.0], abs=1e-4)


def test_filter_restricts_hits_and_narrow_filters_return_enough(make: Callable[..., VectorIndex]) -> None:
    ix, ids, vecs = _filled(make)
    q = vecs[:1]
    # broad filter: every hit must satisfy it
    hits = ix.search(q, k=20, where={"known": 1})[0]
    assert len(hits) == 20
    assert all((h.id - 1000) % 2 == 1 for h in hits)
    # narrow filter: person 17 has exactly 20 vectors, far from the query's person 0
    hits = ix.search(q, k=50, where={"person": 17})[0]
    assert sorted(h.id for h in hits) == sorted(int(i) for i in ids if (i - 1000) % 30 == 17)
    # list = any of; two fields = all of; values compare as strings
    hits = ix.search(q, k=100, where={"person": [4, "5"], "camera": "c3"})[0]
    want = {int(i) for i in ids if (i - 1000) % 30 in (4, 5) and (i - 1000) % 7 == 3}
    assert {h.id for h in hits} == want and len(hits) == len(want)
    # a filter that matches nothing returns no hits, not an error
    assert ix.search(q, k=5, where={"person": 999}) == [[]]
    assert ix.search(q, k=5, where={"nosuchfield": "x"}) == [[]]


def test_a_filter_asked_again_sees_every_metadata_change(make: Callable[..., VectorIndex]) -> None:
    """FAISS remembers the ids of a filter between queries: adds, removals and relabels must show."""
    ix, ids, vecs = _filled(make)
    q = vecs[:1]
    person17 = {int(i) for i in ids if (i - 1000) % 30 == 17}
    assert {h.id for h in ix.search(q, k=50, where={"person": 17})[0]} == person17
    ix.add([5000], vecs[1:2], [{"person": 17}])  # a new face of person 17
    assert {h.id for h in ix.search(q, k=50, where={"person": 17})[0]} == person17 | {5000}
    moved = int(ids[10])  # relabelled from person 10 to person 17
    ix.add([moved], vecs[10:11], [{"person": 17}])
    assert {h.id for h in ix.search(q, k=50, where={"person": "17"})[0]} == person17 | {5000, moved}
    assert moved not in {h.id for h in ix.search(q, k=50, where={"person": 10})[0]}
    gone = sorted(person17)[:3]
    ix.remove(gone + [5000])
    assert {h.id for h in ix.search(q, k=50, where={"person": 17})[0]} == (person17 - set(gone)) | {moved}


def test_remove_really_removes_also_after_save_and_reopen(make: Callable[..., VectorIndex]) -> None:
    ix, ids, vecs = _filled(make)
    gone = [int(i) for i in ids[:20]]
    assert ix.remove(gone + [999_999]) == 20  # the unknown id is not counted
    assert ix.count() == N - 20
    assert not set(gone) & set(ix.ids().tolist())
    # the removed vectors themselves are the best candidates for their own query: still never returned
    for row in ix.search(vecs[:20], k=10):
        assert not {h.id for h in row} & set(gone)
    for row in ix.search(vecs[:20], k=10, where={"person": list(range(20))}):
        assert not {h.id for h in row} & set(gone)
    ix.save()
    again = make.reopen(ix)  # type: ignore[attr-defined]
    assert again.count() == N - 20
    assert not set(gone) & set(again.ids().tolist())
    for row in again.search(vecs[:20], k=10):
        assert row and not {h.id for h in row} & set(gone)
    assert again.remove(gone) == 0


def test_re_adding_an_id_replaces_vector_and_metadata(make: Callable[..., VectorIndex]) -> None:
    ix, ids, vecs = _filled(make)
    target = int(ids[10])
    new = vecs[300:301]  # move id 1010 onto vector 300's place, with new metadata
    ix.add([target], new, [{"person": 77}])
    assert ix.count() == N
    hits = ix.search(new, k=2)[0]
    assert {h.id for h in hits} == {target, int(ids[300])}
    assert ix.search(vecs[10:11], k=1)[0][0].id != target
    assert [h.id for h in ix.search(new, k=5, where={"person": 77})[0]] == [target]
    assert target not in {h.id for h in ix.search(new, k=50, where={"person": 10})[0]}


def test_count_and_ids_track_the_catalog_ids(make: Callable[..., VectorIndex]) -> None:
    ix, ids, _ = _filled(make)
    assert ix.count() == N == len(ix)
    got = ix.ids()
    assert got.dtype == np.int64
    assert sorted(got.tolist()) == ids.tolist()


def test_wrong_dimension_is_a_clear_value_error(make: Callable[..., VectorIndex]) -> None:
    ix = make()
    with pytest.raises(ValueError, match="dimension"):
        ix.add([1], np.ones((1, DIM + 1), dtype=np.float32))
    ix.add([1], np.ones((1, DIM), dtype=np.float32))
    with pytest.raises(ValueError, match="dimension"):
        ix.search(np.ones((1, DIM - 1), dtype=np.float32), k=1)
    with pytest.raises(ValueError):
        ix.add([1, 2], np.ones((1, DIM), dtype=np.float32))  # ids and vectors disagree


def test_empty_index_search_returns_empty_lists(make: Callable[..., VectorIndex]) -> None:
    ix = make()
    assert ix.count() == 0
    assert ix.ids().tolist() == []
    assert ix.search(np.ones((2, DIM), dtype=np.float32), k=5) == [[], []]
    assert ix.remove([1, 2]) == 0


def test_describe_names_engine_kind_and_count(make: Callable[..., VectorIndex]) -> None:
    ix, _, _ = _filled(make)
    d = ix.describe()
    assert d["count"] == N and d["dim"] == DIM
    assert d["engine"] in ("faiss", "milvus-lite")
    want_kind = {"faiss-flat": "flat", "faiss-ivf": "ivf", "faiss-ivfpq": "ivfpq", "faiss-pqfs": "pqfs",
                 "milvus-lite": "hnsw"}
    assert d["kind"] == want_kind[make.backend]  # type: ignore[attr-defined]


def test_faces_forget_erases_from_a_milvus_lite_gallery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lake setting ``index`` switches the faces gallery to Milvus Lite; erasure must still hold."""
    pytest.importorskip("milvus_lite", reason="milvus-lite (milvus extra) not installed")
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "faces"))
    from gallery_fakes import BLUE, RED, FakePipeline, photo

    from visionlake.faces import gallery
    from visionlake.faces.models import Face
    from visionlake.lake import Lake

    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    lake = Lake(tmp_path / "lake")
    db = tmp_path / "milvus" / "faces.db"
    lake.set_setting("index", f"milvus-lite:{db}")
    lake.set_setting("milvus_plaintext_templates", True)  # Milvus cannot encrypt: the owner accepts that
    pipe = FakePipeline()
    alice = [photo(tmp_path / "in/alice1.png", [(RED, 40, 40, 100)]),
             photo(tmp_path / "in/alice2.png", [(RED, 120, 60, 90)])]
    gallery.enroll(lake, "people", "Alice Liddell", alice, consent="yes", pipeline=pipe)
    gallery.enroll(lake, "people", "Bob", [photo(tmp_path / "in/bob1.png", [(BLUE, 50, 50, 110)])], pipeline=pipe)
    index = gallery.face_index(lake, "people", pipe.dim)
    assert index.describe()["engine"] == "milvus-lite"
    assert index.count() == 3
    probe = photo(tmp_path / "probe/a.png", [(RED, 10, 10, 80)])
    assert gallery.identify(lake, "people", probe, pipeline=pipe)["faces"][0]["identity"] == "Alice Liddell"
    with lake.session() as s:
        alice_faces = {f.id for f in s.query(Face).filter(Face.person_id.is_not(None))} - {
            f.id for f in s.query(Face) if f.person_id is not None and "bob" in (f.crop or "")}
    report = gallery.forget(lake, "people", "Alice Liddell")
    assert report["removed"]["vectors"] == 2
    assert report["ok"], [c for c in report["checks"] if not c.get("ok", True)]
    assert index.count() == 1
    with lake.session() as s:
        remaining = {f.id for f in s.query(Face)}
    assert set(index.ids().tolist()) == remaining
    assert not set(index.ids().tolist()) & (alice_faces - remaining)
    assert gallery.identify(lake, "people", probe, pipeline=pipe)["faces"][0]["identity"] == "unknown"
    lake.close()
