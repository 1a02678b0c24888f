"""``visionlake analyse`` gives embeddings to real product photos ingested before any fashion model was there.

The user's story from issue 11: products ingested on a machine without a fashion model get thumbnails
and colours but no search embeddings (the tagger skips itself, loudly, once); after
``visionlake models fetch efficientnet-lite0`` they run ``visionlake analyse -c C`` and search by photo
works. Real Myntra photos and the real backbone from the model cache (skips, naming the command
that fetches it, when it is not there).
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import pytest

from visionlake.cli.common import run_cli

#: a few products per kind, by id (file stem) -- three clearly different kinds
KINDS = {"Watches": ["11188", "13841", "10098", "10605"], "Tshirts": ["10866", "15528", "13419", "10065"],
         "Casual Shoes": ["15517", "15379", "12507", "15510"]}
#: a watch that is NOT ingested: the query
QUERY = "10235"


def _run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from visionlake.cli import app

    monkeypatch.setattr(sys, "argv", ["visionlake", *args])
    code = run_cli(app)
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())  # Rich wraps long error lines


@pytest.mark.heavy
def test_analyse_adds_backbone_embeddings_to_products_ingested_without_a_model(
        tmp_path: Path, products_dir: Path, real_model, monkeypatch, capsys):
    real_model("efficientnet-lite0")
    from visionlake.fashion.search import space_dim
    from visionlake.ingest import ingest
    from visionlake.lake import Lake

    photos = tmp_path / "photos"
    photos.mkdir()
    wanted = {i for ids in KINDS.values() for i in ids}
    for i in sorted(wanted):
        shutil.copy(products_dir / f"{i}.jpg", photos / f"{i}.jpg")
    with (products_dir.parent / "styles.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["id"] in wanted]
    meta = tmp_path / "meta.csv"
    with meta.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "articleType", "baseColour"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)

    # 1. ingestion on a machine with no fashion model: an empty model cache, no hub
    monkeypatch.delenv("VISIONLAKE_FASHION_MODEL", raising=False)
    monkeypatch.delenv("VISIONLAKE_MODELS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    real_cache = real_model("efficientnet-lite0").parent
    monkeypatch.setenv("VISIONLAKE_MODEL_CACHE", str(tmp_path / "empty-cache"))
    lake_dir = tmp_path / "lake"
    lake = Lake(lake_dir)
    lake.create_collection("shop", "fashion")
    report = ingest(lake, photos, "shop", meta=meta, workers=0)
    assert report["rejected"] == 0 and report["ingested"] == len(wanted), report
    assert space_dim(lake, "shop") is None  # no embeddings: nothing to search by photo yet
    lake.close()
    query = str(products_dir / f"{QUERY}.jpg")
    code, _out, err = _run(monkeypatch, capsys, "fashion", "search", "-c", "shop", "--image", query,
                           "--lake", str(lake_dir), "--json")
    assert code == 5 and "visionlake models fetch efficientnet-lite0" in err, (code, err)

    # 2. the model arrives (`visionlake models fetch efficientnet-lite0`): until analysed, search says how
    monkeypatch.setenv("VISIONLAKE_MODEL_CACHE", str(real_cache))
    code, _out, err = _run(monkeypatch, capsys, "fashion", "search", "-c", "shop", "--image", query,
                           "--lake", str(lake_dir), "--json")
    assert code != 0 and "visionlake analyse -c shop" in err, (code, err)
    code, out, err = _run(monkeypatch, capsys, "analyse", "-c", "shop", "--lake", str(lake_dir), "--json")  # a pool
    assert code == 0, err
    rep = json.loads(out)
    assert rep["analysed"] == len(wanted) and rep["missing"] == 0 and rep["errors"] == 0, rep
    code, out, err = _run(monkeypatch, capsys, "info", "--lake", str(lake_dir), "--json")
    col = next(c for c in json.loads(out)["collections"] if c["name"] == "shop")
    assert col["fashion_model"]["name"] == "efficientnet-lite0"
    assert next(i for i in col["indexes"] if i["space"] == "fashion")["count"] == len(wanted)

    # 3. search by photo now works, and finds the same kind of product
    code, out, err = _run(monkeypatch, capsys, "fashion", "search", "-c", "shop", "--image", query, "--top", "4",
                          "--lake", str(lake_dir), "--json")
    assert code == 0, err
    kinds = [h["meta"]["articleType"] for h in json.loads(out)["results"]]
    assert len(kinds) == 4 and kinds.count("Watches") >= 3, kinds

    # 4. a second analyse run embeds every image again, exactly once each (no duplicate vectors)
    code, out, err = _run(monkeypatch, capsys, "analyse", "-c", "shop", "-a", "tagger", "--workers", "0",
                          "--lake", str(lake_dir), "--json")
    assert code == 0 and json.loads(out)["analysed"] == len(wanted), err
    code, out, _ = _run(monkeypatch, capsys, "info", "--lake", str(lake_dir), "--json")
    col = next(c for c in json.loads(out)["collections"] if c["name"] == "shop")
    assert next(i for i in col["indexes"] if i["space"] == "fashion")["count"] == len(wanted)
