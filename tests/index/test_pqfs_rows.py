"""``pqfs`` keeps its fast-scan codes at the row of each face's fp16 vector: removal must move both
together (a code left at the wrong row would re-rank another person's vector), physically drop the
removed faces, survive save/load, and open folders saved before the row store with the same hits."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from visionlake.index import FaissIndex
from visionlake.index import faiss_index as fi
from visionlake.index.fp16_rows import FILE as FP16_FILE

DIM = 64


def _faces(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 4, DIM))
    x = centres[rng.integers(0, len(centres), n)] + 0.8 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _fp16(x: np.ndarray) -> np.ndarray:
    sq = faiss.ScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_fp16)
    return sq.decode(sq.compute_codes(x))


def test_removal_moves_codes_with_their_fp16_rows_and_drops_the_removed(tmp_path):
    base = _faces(3_000, 1)
    ids = np.arange(500, 3_500, dtype=np.int64)
    ix = FaissIndex(tmp_path / "fs", dim=DIM, kind="pqfs")
    ix.build(ids, base)
    rng = np.random.default_rng(2)
    victims = np.concatenate([rng.choice(ids, 300, replace=False), ids[-5:], ids[:3]])
    assert ix.remove(victims) == len(set(victims.tolist()))
    assert ix.remove(victims[:4]) == 0  # already gone
    left = ix.ids()  # row order
    assert sorted(left.tolist()) == sorted(set(ids.tolist()) - set(victims.tolist()))
    by_id = dict(zip(ids.tolist(), base, strict=True))
    vecs = ix._prep(np.stack([by_id[i] for i in left.tolist()]))  # as stored: re-normalised
    # every row's fp16 vector is its own face's
    assert np.array_equal(ix.reconstruct(left), _fp16(vecs))
    # every position's code is its own face's: a fresh scan of the same faces in row order agrees
    ref = fi.faiss.IndexPQFastScan(DIM, ix._index.M, 4, fi.faiss.METRIC_INNER_PRODUCT)
    ref.pq = ix._index.pq
    ref.is_trained = True
    ref.add(vecs)
    q = _faces(20, 3)
    d1, l1 = ix._index.search(ix._prep(q), 50)
    d2, l2 = ref.search(ix._prep(q), 50)
    assert np.array_equal(l1, l2) and np.array_equal(d1, d2)
    # the removed faces' codes are gone from memory (tail of the last block zeroed, no extra blocks)
    scan = ix._index
    packer = scan.get_CodePacker()
    assert scan.codes.size() == -(-scan.ntotal // scan.bbs) * packer.block_size
    assert scan.ntotal2 == -(-scan.ntotal // scan.bbs) * scan.bbs  # the search reads no freed block
    codes = fi.faiss.rev_swig_ptr(scan.codes.get(), scan.codes.size())
    flat = np.zeros(packer.code_size, dtype=np.uint8)
    for pos in range(scan.ntotal, -(-scan.ntotal // scan.bbs) * scan.bbs):
        packer.unpack_1_c(fi.faiss.swig_ptr(codes[(pos // scan.bbs) * packer.block_size:]), pos % scan.bbs,
                          fi.faiss.swig_ptr(flat))
        assert not flat.any()
    # saved and reopened: same hits, the store is listed in the manifest, removed fp16 bytes absent
    before = ix.search(q, k=5)
    ix.save()
    manifest = json.loads((tmp_path / "fs" / "MANIFEST").read_text())
    assert FP16_FILE in manifest["files"] and "rerank.faiss" not in manifest["files"]
    data = (tmp_path / "fs" / FP16_FILE).read_bytes()
    sq = faiss.ScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_fp16)
    for i in victims[:50].tolist():
        assert sq.compute_codes(ix._prep(by_id[i][None]))[0].tobytes() not in data
    again = FaissIndex(tmp_path / "fs", dim=DIM)
    assert again.kind == "pqfs" and again.search(q, k=5) == before
    assert again.count() == len(left)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_a_broad_filter_scores_every_selected_face_exactly(metric, monkeypatch):
    monkeypatch.setattr(fi, "EXACT_FILTER_MAX", 10)  # the test's selection counts as broad
    base = _faces(2_000, 4)
    ids = np.arange(2_000, dtype=np.int64)
    ix = FaissIndex(None, dim=DIM, metric=metric, kind="pqfs")
    ix.build(ids, base)
    for i in ids.tolist():
        ix._set_meta(i, {"cam": i % 3})
    q = _faces(5, 5)
    sel = ids[ids % 3 == 1]
    stored = _fp16(ix._prep(base[sel]))
    qp = ix._prep(q)
    for row, qv in zip(ix.search(q, k=7, where={"cam": 1}), qp, strict=True):
        if metric == "cosine":
            s = stored @ qv
            want = sel[np.argsort(-s, kind="stable")[:7]]
        else:
            s = ((stored - qv) ** 2).sum(1)
            want = sel[np.argsort(s, kind="stable")[:7]]
        assert [h.id for h in row] == want.tolist()


def _legacy_folder(path, ids: np.ndarray, base: np.ndarray) -> None:
    """A ``pqfs`` folder as saved before the row store: one-list IVF codes and an IVF fp16 store."""
    path.mkdir()
    scan = faiss.index_factory(DIM, f"IVF1,PQ{DIM // 8}x4fs", faiss.METRIC_INNER_PRODUCT)
    scan.train(base)
    scan.add_with_ids(base, ids)
    ivf = faiss.extract_index_ivf(scan)
    store = faiss.IndexIVFScalarQuantizer(ivf.quantizer, DIM, 1, faiss.ScalarQuantizer.QT_fp16,
                                          faiss.METRIC_INNER_PRODUCT, False)
    store.is_trained = True
    store.set_direct_map_type(faiss.DirectMap.Hashtable)
    store.add_with_ids(base, ids)
    faiss.write_index(scan, str(path / "index.faiss"))
    faiss.write_index(store, str(path / "rerank.faiss"))
    header = {"engine": "faiss", "kind": "pqfs", "requested_kind": "pqfs", "dim": DIM, "metric": "cosine",
              "nlist": 1, "nprobe": 1, "pq_m": DIM // 8, "rerank": 512, "encrypted": False,
              "metadata": {}}
    (path / "index.json").write_text(json.dumps(header))


def test_a_folder_saved_with_one_ivf_list_opens_with_the_same_hits_and_saves_as_rows(tmp_path):
    base = _faces(1_500, 6)
    ids = np.random.default_rng(7).permutation(10_000)[:1_500].astype(np.int64)  # not in row order
    _legacy_folder(tmp_path / "old", ids, base)
    q = _faces(10, 8)
    qp = FaissIndex(None, dim=DIM)._prep(q)  # as the index prepares queries
    # the old query path: scan the one list, re-rank the pool by the IVF store's fp16 vectors
    scan = faiss.read_index(str(tmp_path / "old" / "index.faiss"))
    store = faiss.read_index(str(tmp_path / "old" / "rerank.faiss"))
    faiss.extract_index_ivf(store).set_direct_map_type(faiss.DirectMap.Hashtable)
    _, cand = scan.search(qp, 512, params=faiss.SearchParametersIVF(nprobe=1))
    want = []
    for row, qv in zip(cand, qp, strict=True):
        s = store.reconstruct_batch(row) @ qv
        order = np.argsort(-s, kind="stable")[:5]
        want.append([(int(row[j]), float(s[j])) for j in order])
    ix = FaissIndex(tmp_path / "old", dim=DIM)
    assert [[(h.id, h.score) for h in hits] for hits in ix.search(q, k=5)] == want
    victim = want[0][0][0]
    assert ix.remove([victim]) == 1
    ix.save()
    assert not (tmp_path / "old" / "rerank.faiss").exists() and (tmp_path / "old" / FP16_FILE).exists()
    again = FaissIndex(tmp_path / "old", dim=DIM)
    assert victim not in {h.id for h in again.search(q[:1], k=5)[0]}
    assert sorted(again.ids().tolist()) == sorted(set(ids.tolist()) - {victim})


def test_an_encrypted_pqfs_folder_reopens_with_the_same_hits_and_hides_the_vectors(tmp_path):
    import os

    from visionlake.crypto import LakeCipher

    cipher = LakeCipher(os.urandom(32))
    base = _faces(1_200, 9)
    ix = FaissIndex(tmp_path / "enc", dim=DIM, kind="pqfs", cipher=cipher)
    ix.build(np.arange(1_200), base)
    ix.remove([5, 1_199])
    q = _faces(5, 10)
    before = ix.search(q, k=3)
    ix.save()
    sq = faiss.ScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_fp16)
    data = (tmp_path / "enc" / FP16_FILE).read_bytes()
    assert sq.compute_codes(ix._prep(base[7:8]))[0].tobytes() not in data  # sealed, not plain fp16
    again = FaissIndex(tmp_path / "enc", dim=DIM, cipher=cipher)
    assert again.search(q, k=3) == before and again.count() == 1_198
