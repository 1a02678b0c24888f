"""``bench identify`` on synthetic templates: streaming distractors, exact vs index top-1, index choice."""

from __future__ import annotations

import numpy as np

from visionlake.bench import faces_gallery as fg
from visionlake.bench import identify_sweep as sweep_mod


def _fake_embeddings(n_people: int = 300, dim: int = 64):
    rng = np.random.default_rng(0)
    rels, vecs = [], []
    for p in range(n_people):
        c = rng.standard_normal(dim)
        for k in range(1 + p % 3):
            rels.append(f"P{p:04d}/P{p:04d}_{k:04d}.jpg")
            v = c + 0.5 * rng.standard_normal(dim)
            vecs.append(v / np.linalg.norm(v))
    vecs = np.asarray(vecs, dtype=np.float32)
    return rels, vecs, np.ones(len(rels), dtype=bool), "fake-64"


def test_identify_streams_distractors_and_agrees_with_exact_search(monkeypatch, tmp_path):
    monkeypatch.setattr(fg, "cached_embeddings", lambda *a, **k: _fake_embeddings())
    out = fg.run_identify(tmp_path, distractors=60_000, cache_dir=tmp_path, kind="ivfsq8", nlist=64, nprobe=64,
                          queries=50, layer_probes=0)
    assert out["gallery_size"] == out["gallery_people"] + out["gallery_extra_people"] + 60_000
    assert out["index"]["kind"] == "ivfsq8"
    assert out["recall_at_1"] >= 0.98  # every list probed: only 8-bit codes differ from exact search
    assert 0 < out["rank1"] <= out["rank1_no_distractors"] and out["rank1_exact"] >= out["rank1"] - 0.02
    r = out["distractor_realism"]
    assert abs(r["synthetic_impostor_q50"] - r["real_impostor_q50"]) < 0.1


def test_sweep_searches_one_index_and_chooses_on_the_validation_half(monkeypatch, tmp_path):
    monkeypatch.setattr(fg, "cached_embeddings", lambda *a, **k: _fake_embeddings())
    out = fg.run_identify(tmp_path, distractors=30_000, cache_dir=tmp_path, kind="ivfsq8r", nlist=64,
                          queries=50, layer_probes=0, nprobe_sweep=[1, 64, 8])
    sweep = out["sweep"]
    assert [r["nprobe"] for r in sweep["settings"]] == [1, 8, 64]
    full = sweep["settings"][-1]
    for half in ("validation", "test"):
        assert full[half]["list_hit"] == 1.0  # every list probed: the exact top-1 is always scanned
        assert full[half]["recall_at_1"] >= 0.98  # and the fp16 re-rank puts it first
        assert sweep["settings"][0][half]["list_hit"] <= full[half]["list_hit"]
    assert full["validation"]["probes"] + full["test"]["probes"] == out["probes"]
    assert out["pack"] == "fake-64"  # the halves' names never leak into the pack the layers use
    assert out["halves"]["validation"]["probes"] == full["validation"]["probes"]


def test_rerank_sweep_on_the_full_scan_index(monkeypatch, tmp_path):
    monkeypatch.setattr(fg, "cached_embeddings", lambda *a, **k: _fake_embeddings())
    out = fg.run_identify(tmp_path, distractors=10_000, cache_dir=tmp_path, kind="pqfs", queries=30,
                          layer_probes=0, rerank_sweep=[500, 32])
    assert out["index"]["kind"] == "pqfs" and out["index"]["nlist"] == 1
    rows = out["rerank_sweep"]["settings"]
    assert [r["rerank_pool"] for r in rows] == [32, 500]
    for half in ("validation", "test"):
        assert rows[0][half]["list_hit"] == rows[1][half]["list_hit"] == 1.0  # one list: every face scanned
        assert rows[1][half]["recall_at_1"] >= rows[0][half]["recall_at_1"]
        assert rows[1][half]["recall_at_1"] >= 0.98


def _row(nprobe: int, recall: float, ratio: float = 0.99, p50: float = 2.0, test_recall: float = 0.0) -> dict:
    return {"value": nprobe, "nprobe": nprobe, "p50_ms": p50,
            "validation": {"probes": 2000, "recall_at_1": recall, "rank1_ratio": ratio},
            "test": {"probes": 2000, "recall_at_1": test_recall, "rank1_ratio": ratio}}


def test_choice_reads_the_validation_half_only_and_keeps_a_margin():
    rows = [_row(64, 0.95, test_recall=0.999), _row(128, 0.9905), _row(256, 0.995), _row(512, 0.999, p50=12.0)]
    assert sweep_mod.choose_setting(rows)["nprobe"] == 256  # 0.9905 is within one standard error of 0.99
    assert sweep_mod.choose_setting([_row(256, 0.999, ratio=0.9)]) is None
    assert sweep_mod.choose_setting([_row(512, 0.999, p50=12.0)]) is None


def test_validation_half_is_stable_and_split_by_person():
    labels = np.array(["Ann", "Bob", "Ann", "Cyd", "Bob", "Dee"] * 50)
    m = sweep_mod.validation_mask(labels)
    assert (m == sweep_mod.validation_mask(labels.copy())).all()
    for name in set(labels.tolist()):
        assert len(set(m[labels == name].tolist())) == 1  # a person is on one side only


def test_wide_templates_get_a_quantised_index_at_a_million():
    assert fg.bench_kind(1_000_000, 512) == "pqfs"  # every face as a 32-byte code + fp16 re-rank
    assert fg.bench_kind(1_000_000, 128) == "ivf"
    assert fg.bench_kind(10_000, 512) == "flat"
    assert fg.bench_kind(1_000_000, 512, "ivfsq8r") == "ivfsq8r"
    assert fg.bench_kind(10_000, 512, "ivf") == "ivf"
    chunks = list(fg.iter_distractors(fg.fit_distractor_model(*_fake_embeddings()[1:2],
                                                              np.repeat(np.arange(300), 2)[:600]), 250, step=100))
    assert [len(c) for c in chunks] == [100, 100, 50]
