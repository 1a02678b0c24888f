from __future__ import annotations

import json
import sys

import pytest

from visionlake.cli.common import run_cli
from visionlake.cli.fashion import app


def _run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["visionlake-fashion", *args])
    code = run_cli(app)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_colour_json(monkeypatch, capsys, tmp_path, make_garment):
    p = tmp_path / "shirt.png"
    make_garment((200, 30, 40)).save(p)
    code, out, _ = _run(monkeypatch, capsys, "colour", str(p), "--json")
    assert code == 0
    data = json.loads(out)
    assert data[0]["family"] == "red" and data[0]["colours"][0]["share"] > 0.8


@pytest.mark.parametrize("content", [b"", b"not a jpeg at all", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"])
def test_bad_image_files_are_one_line_errors(monkeypatch, capsys, tmp_path, content):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    code, _out, err = _run(monkeypatch, capsys, "colour", str(p))
    assert code == 2 and "not a readable image" in err and "Traceback" not in err
    code, _out, err = _run(monkeypatch, capsys, "colour", str(tmp_path / "missing.jpg"))
    assert code == 3 and "no such image" in err


def test_tag_offline_default_model_says_how_to_fix(monkeypatch, capsys, tmp_path, make_garment):
    monkeypatch.delenv("VISIONLAKE_FASHION_MODEL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("VISIONLAKE_MODEL_CACHE", str(tmp_path / "no-models"))  # no offline backbone either
    p = tmp_path / "shirt.png"
    make_garment((200, 30, 40)).save(p)
    code, _out, err = _run(monkeypatch, capsys, "tag", str(p))
    err = " ".join(err.split())  # the console wraps long lines
    assert code == 5 and "--model-dir" in err and "visionlake models fetch efficientnet-lite0" in err


def test_tag_and_search_with_local_model(monkeypatch, capsys, tmp_path, make_garment, tiny_model_dir):
    from visionlake.analysers.base import DecodedImage, WorkerContext
    from visionlake.catalog.models import Image
    from visionlake.fashion.analyser import TaggerAnalyser
    from visionlake.lake import Lake

    p = tmp_path / "shirt.png"
    make_garment((200, 30, 40)).save(p)
    code, out, _ = _run(monkeypatch, capsys, "tag", str(p), "--model-dir", str(tiny_model_dir), "--json")
    assert code == 0
    data = json.loads(out)
    assert {t["attribute"] for t in data[0]["tags"]} >= {"category", "colour", "pattern", "sleeve"}
    assert data[0]["colour"]["family"] == "red"

    lake = Lake(tmp_path / "lake")
    col = lake.create_collection("c", "fashion")
    tagger = TaggerAnalyser(model=str(tiny_model_dir))
    ctx = WorkerContext(lake.root, "c", lake.collection_dir("c"))
    for k, rgb in enumerate([(200, 30, 40), (30, 40, 200), (210, 40, 30)]):
        with lake.session() as s:
            row = Image(collection_id=col.id, sha256=str(k) * 64, path=f"/p/{k}.jpg",
                        meta={"season": "Summer" if k != 2 else "Fall"})
            s.add(row)
            s.flush()
            res = tagger.analyse([DecodedImage(row.path, row.sha256, make_garment(rgb))], ctx)[0]
            tagger.persist(lake, s, col, row.id, res)
    tagger.finalize(lake, col)
    lake.close()
    code, out, _ = _run(monkeypatch, capsys, "search", "--collection", "c", "--lake", str(tmp_path / "lake"),
                        "--image", str(p), "--where", "season=Summer", "--top", "5",
                        "--model-dir", str(tiny_model_dir), "--json")
    assert code == 0
    res = json.loads(out)["results"]
    assert [r["path"] for r in res] == ["/p/0.jpg", "/p/1.jpg"]
    code, out, _ = _run(monkeypatch, capsys, "search", "--collection", "c", "--lake", str(tmp_path / "lake"),
                        "--text", "a blue garment", "--model-dir", str(tiny_model_dir))
    assert code == 0 and out.splitlines()[0].endswith("/p/1.jpg")
    code, _out, err = _run(monkeypatch, capsys, "search", "--collection", "c", "--lake", str(tmp_path / "lake"))
    assert code == 2 and "exactly one" in err
