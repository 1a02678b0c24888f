"""Damaged lake files (issue 12 item 9): one line naming the file, ``check`` names the problem, and
``repair`` restores a lake that passes ``check`` and answers the same queries."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from visionlake.check import check_lake, repair_lake
from visionlake.lake import Lake

from .conftest import make_fashion_lake, make_photos


@pytest.fixture(scope="module")
def fashion_master(tmp_path_factory, tiny_model_dir) -> Path:
    """A small fashion lake ingested once (24 photos, tiny model); tests damage copies of it."""
    from visionlake.ingest import ingest

    root = tmp_path_factory.mktemp("master")
    src = root / "src"
    make_photos(src, 24, seed=3)
    make_fashion_lake(root / "lake", tiny_model_dir)
    lk = Lake(root / "lake")
    ingest(lk, src, "shop", workers=0)
    lk.close()
    return root / "lake"


@pytest.fixture
def copy(fashion_master, tmp_path) -> Path:
    dest = tmp_path / "lake"
    shutil.copytree(fashion_master, dest)
    return dest


def cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run the CLI in-process (fast) and return (exit code, stdout, stderr)."""
    from visionlake.cli import build_app
    from visionlake.cli.common import run_cli

    old = sys.argv
    sys.argv = ["visionlake", *args]
    try:
        code = run_cli(build_app())
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


def answers(root: Path) -> list[list[int]]:
    """Top-5 look-alikes of every image: what a user would see before and after a repair."""
    from visionlake.fashion.search import search

    lk = Lake(root, create=False)
    try:
        return [[h.image_id for h in search(lk, "shop", image=r.id, top=5)] for r in lk.images("shop")]
    finally:
        lk.close()


def index_dir(root: Path) -> Path:
    return root / "collections" / "shop" / "index" / "fashion"


@pytest.mark.parametrize("content", [b"", pytest.param(b"{not json", marks=pytest.mark.heavy),
                                     pytest.param(b"\x00\xff\xfe garbage", marks=pytest.mark.heavy)])
def test_damaged_lake_json_is_one_line_and_repair_restores_it(copy, capsys, content) -> None:
    (copy / "lake.json").write_bytes(content)
    code, _out, err = cli(["--lake", str(copy), "info"], capsys)
    assert code == 1
    flat = "".join(err.split())  # the console wraps long lines at its width, even inside words
    assert flat.count("error:") == 1 and flat.startswith("error:damagedlakefile")
    assert "lake.json" in flat and "run'visionlakecheck'" in flat and "Traceback" not in err
    rep = check_lake(copy)
    assert not rep["ok"] and rep["problems"][0]["file"] == "lake.json"
    fixed = repair_lake(copy)
    assert fixed["ok"], fixed
    assert cli(["--lake", str(copy), "info"], capsys)[0] == 0


@pytest.mark.parametrize("damage", ["torn_save", "flip_index_bytes",
                                    pytest.param("garble_header", marks=pytest.mark.heavy),
                                    pytest.param("truncate_index", marks=pytest.mark.heavy),
                                    pytest.param("delete_manifest_files", marks=pytest.mark.heavy)])
def test_damaged_index_is_named_by_check_and_rebuilt_by_repair(copy, fashion_master, damage) -> None:
    want = answers(fashion_master)
    folder = index_dir(copy)
    if damage == "garble_header":
        (folder / "index.json").write_text('{"kind": ')
    elif damage == "truncate_index":
        data = (folder / "index.faiss").read_bytes()
        (folder / "index.faiss").write_bytes(data[: len(data) // 2])
    elif damage == "flip_index_bytes":
        data = bytearray((folder / "index.faiss").read_bytes())
        for i in range(len(data) - 200, len(data) - 100):
            data[i] ^= 0x5A
        (folder / "index.faiss").write_bytes(bytes(data))
    elif damage == "delete_manifest_files":
        (folder / "index.faiss").unlink()
    else:  # a save killed after index.faiss was replaced, before index.json and MANIFEST (item 7)
        from visionlake.index.faiss_index import FaissIndex

        other = FaissIndex(None, dim=32)
        import numpy as np

        other.add([999], np.ones((1, 32), dtype=np.float32))
        other.path = folder
        other._write_index(other._index, folder / "index.faiss", b"faiss-index")
    rep = check_lake(copy)
    assert not rep["ok"]
    named = {p["file"] for p in rep["problems"]}
    assert any(f.startswith("collections/shop/index/fashion") for f in named), rep["problems"]
    fixed = repair_lake(copy)
    assert fixed["ok"], fixed
    assert answers(copy) == want


def test_a_damaged_index_opened_by_a_command_is_rebuilt_from_the_catalog(copy, fashion_master) -> None:
    """Any command (not only repair) gets correct answers: the index is derived from the catalog."""
    want = answers(fashion_master)
    (index_dir(copy) / "index.faiss").write_bytes(b"\x00" * 100)
    assert answers(copy) == want
    assert check_lake(copy)["ok"]  # the command saved the rebuilt index


@pytest.mark.damages_lake  # the catalog is garbled: repair cannot fix it, and says so
def test_a_damaged_catalog_is_one_line_and_repair_says_it_cannot(copy, capsys) -> None:
    db = copy / "catalog.sqlite"
    for side in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (copy / side).unlink(missing_ok=True)
    data = bytearray(db.read_bytes())
    data[:100] = b"\xab" * 100  # the SQLite header
    db.write_bytes(bytes(data))
    code, _out, err = cli(["--lake", str(copy), "images", "list", "-c", "shop"], capsys)
    flat = "".join(err.split())  # the console wraps long lines at its width, even inside words
    assert code == 1 and "catalog.sqlite" in flat and "run'visionlakecheck'" in flat and "Traceback" not in err
    rep = check_lake(copy)
    assert rep["problems"][0]["file"] == "catalog.sqlite" and not rep["problems"][0]["repairable"]
    fixed = repair_lake(copy)
    assert fixed["could_not"] and fixed["could_not"][0]["file"] == "catalog.sqlite"


def test_missing_and_garbled_thumbnails_are_found_and_regenerated(copy, capsys) -> None:
    thumbs = sorted((copy / "collections" / "shop" / "thumbs").rglob("*.jpg"))
    thumbs[0].unlink()
    thumbs[1].write_bytes(thumbs[1].read_bytes()[:50])
    code, out, _err = cli(["--lake", str(copy), "check"], capsys)
    assert code == 1 and "thumbnail" in out
    fixed = repair_lake(copy)
    assert fixed["ok"], fixed
    assert thumbs[0].exists()


@pytest.mark.damages_lake  # the key is garbled, then deleted: nothing can bring it back
def test_a_garbled_key_file_is_named_when_encrypted_templates_exist(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faces"))
    from gallery_fakes import RED, FakePipeline, photo

    from visionlake.faces import gallery

    lk = Lake(tmp_path / "lake")
    gallery.enroll(lk, "people", "Alice", [photo(tmp_path / "a.png", [(RED, 40, 40, 100)])], pipeline=FakePipeline())
    lk.close()
    assert check_lake(tmp_path / "lake")["ok"]
    (tmp_path / "lake" / "keys" / "lake.key").write_bytes(b"%%% not base64 %%%")
    rep = check_lake(tmp_path / "lake")
    assert [p["file"] for p in rep["problems"] if p["kind"] == "key"] == ["keys/lake.key"]
    (tmp_path / "lake" / "keys" / "lake.key").unlink()
    rep = check_lake(tmp_path / "lake")
    assert any(p["file"] == "keys/lake.key" and "missing" in p["problem"] for p in rep["problems"])


def test_a_read_only_lake_can_be_read(copy, monkeypatch) -> None:
    """Opened read-only (SQLite mode=ro) when the folder is not writable: info and listing work."""
    import visionlake.lake as lake_mod

    real = lake_mod.os.access
    monkeypatch.setattr(lake_mod.os, "access", lambda p, mode: False if mode == lake_mod.os.W_OK else real(p, mode))
    lk = Lake(copy, create=False)
    try:
        assert lk.read_only
        assert lk.info()["collections"][0]["images"] == 24
        assert len(lk.images("shop")) == 24
        with pytest.raises(Exception):  # noqa: B017 - any write is refused by the read-only connection
            lk.create_collection("new")
    finally:
        lk.close()


def test_key_rotation_keeps_the_index_manifest_valid(tmp_path, monkeypatch) -> None:
    """Rotation re-seals index.faiss in place; the manifest follows, so check passes and nothing rebuilds."""
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faces"))
    from gallery_fakes import RED, FakePipeline, photo

    from visionlake.faces import gallery
    from visionlake.index.manifest import verify_manifest
    from visionlake.keyring import rotate_lake_key

    lk = Lake(tmp_path / "lake")
    gallery.enroll(lk, "people", "Alice", [photo(tmp_path / "a.png", [(RED, 40, 40, 100)])], pipeline=FakePipeline())
    rotate_lake_key(lk)
    lk.close()
    verify_manifest(tmp_path / "lake" / "collections" / "people" / "index" / "faces")
    assert check_lake(tmp_path / "lake")["ok"]
    lk = Lake(tmp_path / "lake", create=False)
    try:
        out = gallery.identify(lk, "people", photo(tmp_path / "p.png", [(RED, 10, 10, 80)]), pipeline=FakePipeline())
        assert [f["identity"] for f in out["faces"]] == ["Alice"]
    finally:
        lk.close()


def test_files_others_can_read_are_reported_by_check_and_made_private_by_repair(copy) -> None:
    """A lake file left 0644 (copied in by hand, a restore from backup) is named by ``check`` and
    tightened to 0600 / 0700 by ``repair``; links are never followed."""
    loose_file, loose_dir = copy / "lake.json", copy / "collections"
    loose_file.chmod(0o644)
    loose_dir.chmod(0o755)
    rep = check_lake(copy)
    assert rep["checked"]["loose_modes"] == 2
    assert {w["file"] for w in rep["warnings"]} >= {"lake.json", "collections"}
    fixed = repair_lake(copy)
    assert any("made private" in line for line in fixed["repaired"])
    assert loose_file.stat().st_mode & 0o777 == 0o600
    assert loose_dir.stat().st_mode & 0o777 == 0o700
    assert check_lake(copy)["checked"]["loose_modes"] == 0
