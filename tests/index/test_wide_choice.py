"""Wide templates (512-d ArcFace) at gallery scale: the automatic index is ``pqfs`` (every face scanned as a
fast-scan code, fp16 re-rank of the swept pool), and it behaves like the other kinds (exact re-rank, real
removal, filters, save and load); so does ``ivfsq8r``."""

from __future__ import annotations

import numpy as np
import pytest

from visionlake.index import FaissIndex
from visionlake.index import faiss_index as fi


def test_a_million_512d_templates_get_a_full_fast_scan_with_fp16_rerank():
    assert fi.choose_kind(1_000_000, dim=512) == "pqfs"
    assert fi.choose_kind(200_000, dim=512) == "pqfs"
    assert fi.choose_kind(20_000, dim=512) == "flat"
    assert fi.choose_kind(10_000_000, dim=512) == "ivfpq"  # past a full scan's latency
    # 128-d dlib templates keep their policy
    assert fi.choose_kind(1_000_000, dim=128) == "ivf"
    assert fi.choose_kind(10_000_000, dim=128) == "ivfpq"
    ix = FaissIndex(None, dim=512)
    ix.train(fi.choose_kind(1_000_000, dim=512), np.random.default_rng(0).standard_normal((2_000, 512)))
    assert (ix.kind, ix.nlist, ix.nprobe, ix.rerank) == ("pqfs", 1, 1, fi.PQFS_RERANK)
    assert ix.describe()["rerank_store"] == "fp16"


@pytest.fixture()
def small_wide_policy(monkeypatch):
    """The same policy at a size a test can build: approximate from 1,000 vectors."""
    monkeypatch.setattr(fi, "FLAT_MAX", 1_000)


def _faces(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 4, dim))
    x = centres[rng.integers(0, len(centres), n)] + 0.8 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_sq8_scan_with_fp16_rerank_reranks_removes_and_reloads(tmp_path):
    dim = 256
    base = _faces(4_000, dim, 1)
    queries = base[:200] + 0.3 * _faces(200, dim, 2)
    ix = FaissIndex(tmp_path / "ix", dim=dim, kind="ivfsq8r")
    ix.build(np.arange(len(base)), base, nlist=32)
    assert ix.kind == "ivfsq8r" and ix.describe()["rerank_store"] == "fp16"
    ix.nprobe = 32  # every list: only the codes could differ from exact search, and the re-rank fixes them
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    exact = np.argmax(q @ base.T, axis=1)
    got = np.array([hits[0].id for hits in ix.search(queries, k=1)])
    assert np.mean(got == exact) >= 0.99
    victims = sorted(set(exact[:20].tolist()))
    assert ix.remove(victims) == len(victims)
    assert not {h.id for hits in ix.search(queries[:20], k=5) for h in hits} & set(victims)
    ix.save()
    again = FaissIndex(tmp_path / "ix", dim=dim)
    assert again.kind == "ivfsq8r" and again.count() == len(base) - len(victims)
    assert not {h.id for hits in again.search(queries[:20], k=5) for h in hits} & set(victims)
    assert again._rerank.ntotal == again.count()  # the fp16 copies of removed faces went too


def test_full_fast_scan_with_rerank_finds_removes_filters_and_reloads(small_wide_policy, tmp_path):
    dim = 256
    base = _faces(6_000, dim, 3)
    queries = base[:200] + 0.3 * _faces(200, dim, 4)
    ix = FaissIndex(tmp_path / "fs", dim=dim)  # automatic: wide and past FLAT_MAX
    ix.build(np.arange(len(base)), base)
    assert ix.kind == "pqfs" and ix.nlist == 1 and ix.describe()["rerank_store"] == "fp16"
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    exact = np.argmax(q @ base.T, axis=1)
    got = np.array([hits[0].id for hits in ix.search(queries, k=1)])
    assert np.mean(got == exact) >= 0.99
    victims = sorted(set(exact[:20].tolist()))
    assert ix.remove(victims) == len(victims)
    assert not {h.id for hits in ix.search(queries[:20], k=5) for h in hits} & set(victims)
    scanned = ix._index
    ix.add(np.array([10_000]), base[:1], [{"side": "new"}])
    assert ix._index is scanned  # one more face is added, not a reason to rebuild the index
    assert [h.id for h in ix.search(base[:1], k=1, where={"side": "new"})[0]] == [10_000]
    ix.save()
    again = FaissIndex(tmp_path / "fs", dim=dim)
    assert again.kind == "pqfs" and again.count() == len(base) - len(victims) + 1
    assert again._rerank.ntotal == again.count()
    assert not {h.id for hits in again.search(queries[:20], k=5) for h in hits} & set(victims)
    assert sorted(again.ids().tolist()) == sorted(set(range(len(base))) - set(victims) | {10_000})
