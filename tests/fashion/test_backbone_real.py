"""Tagging and search with the real EfficientNet-Lite0 backbone, end to end through ingestion and the CLI.

Skips (saying which command fetches it) when the model is not in the cache; CI fetches it in setup.sh.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from visionlake.cli.common import run_cli


def _run(monkeypatch, capsys, app, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["visionlake", *args])
    code = run_cli(app)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def fashion_app():
    from visionlake.cli.fashion import app

    return app


def test_ingestion_embeds_with_the_backbone_and_info_shows_it(backbone_lake, monkeypatch, capsys):
    from visionlake.cli import app as root_app

    code, out, _ = _run(monkeypatch, capsys, root_app, "info", "--lake", str(backbone_lake / "lake"), "--json")
    assert code == 0
    col = next(c for c in json.loads(out)["collections"] if c["name"] == "looks")
    assert col["fashion_model"]["name"] == "efficientnet-lite0" and col["fashion_model"]["text"] is False
    fashion = next(i for i in col["indexes"] if i["space"] == "fashion")
    from visionlake.fashion.backbone import BackboneModel, rows_dim

    # a graph converted by this version gives the 'rows' layout; one converted before it, the pooled features
    want = ("rows", rows_dim()) if BackboneModel(threads=1).has_rows else ("pooled", 1280)
    assert (col["fashion_model"]["layout"], col["fashion_model"]["dim"]) == want
    assert fashion["dim"] == 1280  # the index holds the pooled part of rows vectors (fashion.index_vectors)
    assert fashion["count"] == 18
    code, out, _ = _run(monkeypatch, capsys, root_app, "info", "--lake", str(backbone_lake / "lake"))
    assert "efficientnet-lite0" in out and f"{want[0]} layout" in out


def test_search_by_photo_finds_the_same_kind_and_honours_filters(backbone_lake, monkeypatch, capsys, fashion_app,
                                                               tmp_path, look_kinds):
    q = tmp_path / "query.png"
    look_kinds["Trousers"]((180, 60, 90), size=150).save(q)  # a colour and size not in the lake
    lake = str(backbone_lake / "lake")
    code, out, err = _run(monkeypatch, capsys, fashion_app, "search", "-c", "looks", "--image", str(q),
                          "--top", "5", "--lake", lake, "--json")
    assert code == 0, err
    hits = json.loads(out)["results"]
    kinds = [h["meta"]["articleType"] for h in hits]
    assert kinds.count("Trousers") >= 4, kinds
    code, out, _ = _run(monkeypatch, capsys, fashion_app, "search", "-c", "looks", "--image", str(q),
                        "--where", "usage=Sports", "--top", "5", "--lake", lake, "--json")
    assert code == 0
    assert {h["meta"]["articleType"] for h in json.loads(out)["results"]} == {"Tshirts"}


def test_text_search_says_it_needs_the_text_model(backbone_lake, monkeypatch, capsys, fashion_app):
    code, _out, err = _run(monkeypatch, capsys, fashion_app, "search", "-c", "looks", "--text", "red dress",
                           "--lake", str(backbone_lake / "lake"))
    assert code == 5 and "text-capable" in err and "Traceback" not in err


def test_train_heads_then_tag_new_photos_with_probabilities(backbone_lake, monkeypatch, capsys, fashion_app,
                                                            tmp_path, look_kinds):
    lake = str(backbone_lake / "lake")
    code, out, err = _run(monkeypatch, capsys, fashion_app, "train", "-c", "looks", "--label-column", "articleType",
                          "--folds", "3", "--lake", lake, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["model"] == "efficientnet-lite0" and report["classes"] == 3 and report["samples"] == 18
    assert report["cv_accuracy"] >= 0.8
    photos = []
    for kind, draw in look_kinds.items():
        p = tmp_path / f"new_{kind}.png"
        draw((60, 170, 170), size=140).save(p)  # teal: a colour no training photo had
        photos.append((kind, p))
    code, out, err = _run(monkeypatch, capsys, fashion_app, "tag", "-c", "looks", *[str(p) for _, p in photos],
                          "--lake", lake, "--json")
    assert code == 0, err
    results = json.loads(out)
    right = 0
    for (kind, _p), res in zip(photos, results, strict=True):
        assert res["model"] == "efficientnet-lite0"
        head = [t for t in res["tags"] if t["attribute"] == "articleType"]
        assert len(head) == 1 and head[0]["source"] == "head" and 0 < head[0]["confidence"] <= 1
        right += head[0]["value"] == kind
    assert right >= 2
    # below the threshold a head answers "unsure" rather than guess (stored vectors: no model needed)
    from visionlake.fashion.heads import collection_embeddings
    from visionlake.fashion.tagger import load_heads
    from visionlake.lake import Lake

    lk = Lake(backbone_lake / "lake", create=False)
    try:
        _ids, vecs, labels = collection_embeddings(lk, "looks", "articleType")
        head = load_heads(lk.collection_dir("looks") / "heads")["articleType"]
    finally:
        lk.close()
    # an ambiguous look: the mean of two photos of different article types
    i = 0
    j = next(k for k, lab in enumerate(labels) if lab != labels[i])
    blend = (vecs[i] + vecs[j])[None, :]
    blend /= np.linalg.norm(blend)
    photos = np.concatenate([vecs[:1], blend])
    sure = head.predict_tags(photos, threshold=0.0)
    strict = head.predict_tags(photos, threshold=0.9)
    assert all(t.value != "unsure" for t in sure)
    assert strict[0].value == labels[0] and strict[0].confidence >= 0.9  # its own training photo: sure
    assert strict[1].value == "unsure" and strict[1].confidence < 0.9  # the blend: unsure, not a guess
    assert [round(t.confidence, 6) for t in sure] == [round(t.confidence, 6) for t in strict]


def test_tag_without_a_collection_falls_back_to_the_backbone(real_model, monkeypatch, capsys, fashion_app, tmp_path,
                                                              look_kinds):
    real_model("efficientnet-lite0")
    monkeypatch.delenv("VISIONLAKE_FASHION_MODEL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    p = tmp_path / "shirt.png"
    look_kinds["Tshirts"]((200, 30, 40)).save(p)
    code, out, err = _run(monkeypatch, capsys, fashion_app, "tag", str(p))
    assert code == 0, err
    text = " ".join(out.split())  # the console wraps long lines
    assert "model: efficientnet-lite0" in text and "colour: red" in text and "no text tower" in text
