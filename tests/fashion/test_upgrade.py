"""``visionlake fashion upgrade``: an older ``pooled`` backbone collection moves to ``rows`` in one command.

A random-weight Lite0 graph stands in for the real one (same shapes and outputs, see ``random_lite0``):
8 photos of two "article types" ingested as a collection recorded with the ``pooled`` layout (what a
collection embedded before the layout existed looks like), with a head trained on its labels.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from visionlake.fashion.backbone import BACKBONE_NAME, LAYOUT_POOLED, LAYOUT_ROWS, BackboneModel
from visionlake.fashion.backbone_convert import ONNX_NAME

PHOTOS = 8
REPO = Path(__file__).resolve().parents[2]


def _photo(i: int) -> Image.Image:
    """Two kinds (a wide block / a tall block) of distinct noisy photos."""
    rng = np.random.default_rng(100 + i)
    a = rng.integers(0, 80, (200, 180, 3), dtype=np.uint8)
    if i % 2:
        a[60:140, 10:170] = (220, 40 + 10 * i, 60)
    else:
        a[10:190, 60:120] = (40, 200, 60 + 10 * i)
    return Image.fromarray(a)


@pytest.fixture(scope="module")
def pooled_lake(random_lite0, tmp_path_factory):
    """A lake with collection ``old`` (pooled vectors, a trained ``kind`` head, head tags) and ``plain``."""
    import visionlake.fashion.backbone as bb
    from visionlake.fashion import person_mask
    from visionlake.fashion.heads import train
    from visionlake.fashion.tagger import MODEL_SETTING
    from visionlake.ingest import ingest
    from visionlake.ingest.analyse import analyse
    from visionlake.lake import Lake

    root = tmp_path_factory.mktemp("upgrade")
    photos = root / "photos"
    photos.mkdir()
    lines = ["id,kind"]
    for i in range(PHOTOS):
        _photo(i).save(photos / f"{i}.png")
        lines.append(f"{i},{'wide' if i % 2 else 'tall'}")
    (root / "meta.csv").write_text("\n".join(lines) + "\n")
    pooled = BackboneModel(random_lite0 / "new", threads=1, layout=LAYOUT_POOLED).dim
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bb, "backbone_file", lambda: random_lite0 / "new" / ONNX_NAME)
        mp.setattr(person_mask, "load_person_masker", lambda threads=1: None)  # whatever the cache holds
        lake = Lake(root / "lake")
        lake.create_collection("old", "fashion", settings={  # as recorded before layouts existed
            "tagger_options": {"model": BACKBONE_NAME},
            MODEL_SETTING: {"name": BACKBONE_NAME, "backend": "onnx-backbone", "dim": pooled, "text": False}})
        lake.create_collection("plain", "plain")
        report = ingest(lake, photos, "old", meta=root / "meta.csv", workers=0)
        assert report["ingested"] == PHOTOS, report
        train(lake, "old", "kind", folds=2)
        analyse(lake, "old", analysers=["tagger"], workers=0)  # tags from the head
        lake.close()
    return root


@pytest.fixture()
def lake_copy(pooled_lake, random_lite0, tmp_path, monkeypatch):
    """A private copy of :func:`pooled_lake`'s lake (path), with the random graph as the model cache's."""
    import visionlake.fashion.backbone as bb

    monkeypatch.setattr(bb, "backbone_file", lambda: random_lite0 / "new" / ONNX_NAME)
    shutil.copytree(pooled_lake / "lake", tmp_path / "lake", ignore=shutil.ignore_patterns(".lock"))
    return tmp_path / "lake"


def _state(root: Path) -> dict:
    """What a user can observe: record, vector widths, head width, head tags, index width and ids."""
    from visionlake.catalog.models import Image as ImageRow
    from visionlake.fashion.heads import TrainedHead
    from visionlake.fashion.models import FashionEmbedding, FashionHead, FashionTag
    from visionlake.lake import Lake

    lake = Lake(root, create=False)
    try:
        col = lake.collection("old")
        with lake.session() as s:
            widths = sorted(s.scalars(select(FashionEmbedding.dim).join(ImageRow)
                                      .where(ImageRow.collection_id == col.id)))
            tags = s.execute(select(FashionTag.image_id, FashionTag.value).join(ImageRow)
                             .where(ImageRow.collection_id == col.id, FashionTag.source == "head")).all()
            row = s.scalars(select(FashionHead).where(FashionHead.collection_id == col.id,
                                                      FashionHead.label_column == "kind")).one()
            head_row = (row.samples, round(float(row.cv_accuracy), 6), list(row.classes))
        header = lake.index_header("old", "fashion")
        ids = set(lake.index("old", "fashion", int(header["dim"])).ids().tolist())
        head = TrainedHead.load(lake.collection_dir("old") / "heads" / "kind.joblib")
        return {"record": dict(col.settings["fashion_model"]), "marker": col.settings.get("fashion_upgrade"),
                "widths": widths, "head_dim": head.dim, "head_tags": dict(tags), "index_dim": int(header["dim"]),
                "head_row": head_row, "head_file": (head.samples, round(float(head.cv_accuracy), 6), head.classes),
                "index_ids": ids, "images": {im.path.rsplit("/", 1)[-1]: im.id for im in lake.images("old")}}
    finally:
        lake.close()


def _assert_upgraded(root: Path, random_lite0) -> dict:
    """Rows everywhere, the index consistent with the catalog, ``check`` clean, search by photo works."""
    from visionlake.check import check_lake
    from visionlake.fashion.search import search
    from visionlake.fashion.tagger import model_for_collection
    from visionlake.lake import Lake

    st = _state(root)
    rows = BackboneModel(random_lite0 / "new", threads=1)
    assert st["record"]["layout"] == LAYOUT_ROWS and st["record"]["dim"] == rows.dim and st["marker"] is None
    assert st["widths"] == [rows.dim] * PHOTOS and st["head_dim"] == rows.dim
    assert st["index_dim"] == rows.feature_dim and st["index_ids"] == set(st["images"].values())
    assert set(st["head_tags"]) == set(st["images"].values())  # every image tagged by the retrained head
    assert st["head_row"] == st["head_file"]  # the catalog describes the head file that is there
    assert check_lake(root)["problems"] == []
    lake = Lake(root, create=False)
    try:  # the stored vector is the rows embedding of the photo; a new photo is queried in the same space
        from visionlake.fashion.heads import collection_embeddings

        ids, vecs, _ = collection_embeddings(lake, "old")
        want = rows.embed_images([_photo(3)])[0]
        np.testing.assert_allclose(vecs[ids.index(st["images"]["3.png"])], want, atol=1e-5)
        hits = search(lake, "old", image=_photo(3), top=3, model=model_for_collection(lake, "old"))
        assert hits[0].image_id == st["images"]["3.png"] and hits[0].score > 0.999
    finally:
        lake.close()
    return st


def test_upgrade_reembeds_rebuilds_the_index_retrains_heads_and_records_rows(lake_copy, random_lite0) -> None:
    from visionlake.fashion.upgrade import upgrade_layout
    from visionlake.lake import Lake

    before = _state(lake_copy)
    pooled = before["record"]["dim"]
    assert before["record"].get("layout") is None and before["widths"] == [pooled] * PHOTOS
    assert before["head_dim"] == pooled and len(before["head_tags"]) == PHOTOS
    lake = Lake(lake_copy, create=False)
    seen: list[int] = []
    try:
        report = upgrade_layout(lake, "old", workers=0, chunk_size=3, progress=seen.append)
    finally:
        lake.close()
    assert report["changed"] and report["ok"], report["checks"]
    assert (report["from"], report["to"], report["analysed"], report["missing"]) == (LAYOUT_POOLED, LAYOUT_ROWS,
                                                                                      PHOTOS, 0)
    assert sum(seen) == PHOTOS  # progress, chunk by chunk
    (head,) = report["heads"]
    assert head["status"] == "retrained" and head["old_dim"] == pooled and head["samples"] == PHOTOS
    assert report["head_tags"] == PHOTOS
    after = _assert_upgraded(lake_copy, random_lite0)
    assert after["head_tags"] == before["head_tags"]  # the two kinds are told apart, as before

    lake = Lake(lake_copy, create=False)
    try:  # a second run: already on rows, nothing changes
        again = upgrade_layout(lake, "old", workers=0)
    finally:
        lake.close()
    assert again["changed"] is False and "already on the 'rows' layout" in again["message"]
    assert _state(lake_copy)["record"] == after["record"]


def test_images_that_cannot_be_read_again_lose_their_old_vector_and_say_so(lake_copy, random_lite0) -> None:
    from visionlake.catalog.models import Image as ImageRow
    from visionlake.catalog.models import SourcePath
    from visionlake.check import check_lake
    from visionlake.fashion.upgrade import upgrade_layout
    from visionlake.lake import Lake

    lake = Lake(lake_copy, create=False)
    try:
        gone = _state(lake_copy)["images"]["5.png"]
        with lake.session() as s:  # its file moved away since ingestion
            s.get(ImageRow, gone).path = str(lake_copy / "moved" / "5.png")
            for sp in s.scalars(select(SourcePath).where(SourcePath.image_id == gone)):
                sp.path = str(lake_copy / "moved" / "5.png")
        report = upgrade_layout(lake, "old", workers=0)
    finally:
        lake.close()
    assert report["ok"] and report["missing"] == 1 and report["old_vectors_removed"] == 1
    assert [p["image_id"] for p in report["problems"]] == [gone]
    st = _state(lake_copy)
    assert len(st["widths"]) == PHOTOS - 1 and set(st["widths"]) == {st["record"]["dim"]}
    assert gone not in st["index_ids"] and gone not in st["head_tags"]
    assert check_lake(lake_copy)["problems"] == []


_CRASH_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import visionlake.fashion.backbone as bb
    from visionlake.fashion.upgrade import upgrade_layout
    from visionlake.lake import Lake

    bb.backbone_file = lambda: Path(sys.argv[2])
    lake = Lake(sys.argv[1], create=False)
    upgrade_layout(lake, "old", workers=0, chunk_size=2)
    lake.close()
""")


@pytest.mark.parametrize("crash", ["analyse.chunk.committed:2",
                                   pytest.param("fashion.upgrade.reembedded", marks=pytest.mark.heavy),
                                   pytest.param("fashion.upgrade.head_retrained", marks=pytest.mark.heavy),
                                   pytest.param("fashion.train.head_saved", marks=pytest.mark.heavy)])
def test_killed_mid_upgrade_the_collection_stays_consistent_and_the_command_resumes(lake_copy, random_lite0,
                                                                                    crash) -> None:
    from visionlake.check import check_lake
    from visionlake.errors import BadInput
    from visionlake.fashion.heads import train
    from visionlake.fashion.search import search
    from visionlake.fashion.upgrade import upgrade_layout
    from visionlake.lake import Lake

    env = dict(os.environ, VISIONLAKE_CRASH_AT=crash)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", _CRASH_SCRIPT, str(lake_copy), str(random_lite0 / "new" / ONNX_NAME)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    mid = _state(lake_copy)
    assert mid["marker"] is not None and mid["record"]["layout"] == LAYOUT_ROWS
    if crash.startswith("analyse"):  # 2 chunks of 2 committed: half rows, half still pooled
        assert mid["widths"] == [mid["record"]["pooled_dim"]] * 4 + [mid["record"]["dim"]] * 4
    # the catalog is the truth at every moment: the index agrees with it, search by photo id works
    assert check_lake(lake_copy)["problems"] == []
    lake = Lake(lake_copy, create=False)
    try:
        first = mid["images"]["0.png"]
        assert search(lake, "old", image=first, top=1)[0].image_id == first
        if crash.startswith("analyse"):
            with pytest.raises(BadInput, match="fashion upgrade -c old"):  # heads need one space
                train(lake, "old", "kind")
        report = upgrade_layout(lake, "old", workers=0)
    finally:
        lake.close()
    assert report["ok"] and report["resumed"], report
    if crash.startswith("analyse"):
        assert report["analysed"] == 4  # only what the killed run had not committed
    _assert_upgraded(lake_copy, random_lite0)


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from visionlake.cli.common import run_cli
    from visionlake.cli.fashion import app

    monkeypatch.setattr(sys, "argv", ["visionlake-fashion", *args])
    code = run_cli(app)
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())


def test_cli_upgrades_and_refuses_bad_input_with_one_line(lake_copy, random_lite0, monkeypatch, capsys) -> None:
    import visionlake.fashion.backbone as bb

    lk = str(lake_copy)
    code, _, err = _cli(monkeypatch, capsys, "upgrade", "-c", "nope", "--lake", lk)
    assert code == 3 and "nope" in err and "Traceback" not in err
    code, _, err = _cli(monkeypatch, capsys, "upgrade", "-c", "plain", "--lake", lk)
    assert code == 2 and "only fashion collections" in err
    # a model cache converted by an older visionlake: stop before changing anything, name the fix
    monkeypatch.setattr(bb, "backbone_file", lambda: random_lite0 / "old" / ONNX_NAME)
    before = _state(lake_copy)
    code, _, err = _cli(monkeypatch, capsys, "upgrade", "-c", "old", "--lake", lk)
    assert code == 5 and "visionlake models fetch efficientnet-lite0 --force" in err
    assert _state(lake_copy)["record"] == before["record"] and _state(lake_copy)["marker"] is None

    monkeypatch.setattr(bb, "backbone_file", lambda: random_lite0 / "new" / ONNX_NAME)
    code, out, _ = _cli(monkeypatch, capsys, "upgrade", "-c", "old", "--lake", lk, "--workers", "0", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["to"] == LAYOUT_ROWS and data["heads"][0]["status"] == "retrained"
    code, out, _ = _cli(monkeypatch, capsys, "upgrade", "-c", "old", "--lake", lk)
    assert code == 0 and "already on the 'rows' layout" in " ".join(out.split())
