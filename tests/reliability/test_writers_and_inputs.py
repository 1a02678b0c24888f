"""Concurrent writers (item 6), non-UTF-8 file names (item 5), transient failures (item 8), file modes
and the index setting (item 12)."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from visionlake.errors import BadInput, Busy, LakeDamaged
from visionlake.ingest import ingest
from visionlake.lake import Lake
from visionlake.locks import collection_write_lock

from .conftest import assert_lake_ok, make_photos, vl


@pytest.fixture
def plain(tmp_path):
    lk = Lake(tmp_path / "lake")
    lk.create_collection("c", "plain")
    yield lk
    lk.close()


def test_a_second_ingest_into_the_same_collection_is_refused_at_once_with_the_holder(plain, tmp_path) -> None:
    src = tmp_path / "src"
    make_photos(src, 3)
    with collection_write_lock(plain, "c", "ingest"):
        r = vl("--lake", str(plain.root), "ingest", str(src), "-c", "c", "--workers", "0", timeout=60)
    assert r.returncode == 1
    assert f"busy: another ingest into 'c' is running (pid {os.getpid()})" in r.stderr.replace("\n", " ")
    assert "Traceback" not in r.stderr
    assert ingest(plain, src, "c", workers=0)["ingested"] == 3  # the lock went with its holder
    assert_lake_ok(plain.root)


def test_in_process_lock_refuses_a_second_holder(plain) -> None:
    with collection_write_lock(plain, "c"), pytest.raises(Busy, match="busy"):
        with collection_write_lock(plain, "c"):
            pass


def test_a_writer_error_inside_the_pool_raises_promptly_instead_of_hanging(plain, tmp_path, monkeypatch) -> None:
    from visionlake.ingest.writer import CatalogWriter

    src = tmp_path / "src"
    make_photos(src, 80)
    calls = {"n": 0}
    real = CatalogWriter.write

    def failing(self, outcomes):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("writer exploded")
        return real(self, outcomes)

    monkeypatch.setattr(CatalogWriter, "write", failing)
    box: dict[str, BaseException] = {}

    def run() -> None:
        try:
            ingest(plain, src, "c", workers=1, chunk_size=4)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            box["exc"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "ingestion hung after a writer error inside the pool"
    assert isinstance(box.get("exc"), RuntimeError)
    monkeypatch.setattr(CatalogWriter, "write", real)
    report = ingest(plain, src, "c", workers=0)  # nothing is left locked or half-written
    assert report["ingested"] + report["already_done"] == 80
    assert_lake_ok(plain.root)


def test_non_utf8_file_names_are_stored_reported_and_resumed(plain, tmp_path) -> None:
    src = tmp_path / "src"
    make_photos(src, 3)
    raw = os.fsencode(src) + b"/caf\xe9_\xff.jpg"  # Latin-1 bytes: not UTF-8
    (src / "p00000.jpg").rename(raw.decode("utf-8", "surrogateescape"))
    report = ingest(plain, src, "c", workers=0)
    assert report["ingested"] == 3 and report["rejected"] == 0
    stored = {r.path for r in plain.images("c")}
    assert os.fsdecode(raw) in stored and Path(os.fsdecode(raw)).exists()  # round-trips to the same bytes
    again = ingest(plain, src, "c", workers=0)
    assert again["already_done"] == 3 and again["ingested"] == 0
    table = vl("--lake", str(plain.root), "images", "list", "-c", "c", env={"COLUMNS": "400"}, timeout=60)
    assert table.returncode == 0 and "caf\\xe9_\\xff.jpg" in table.stdout
    assert_lake_ok(plain.root)


def test_a_full_disk_while_writing_thumbnails_is_retried_not_rejected(plain, tmp_path, monkeypatch) -> None:
    from visionlake.analysers.thumbnail import ThumbnailAnalyser

    src = tmp_path / "src"
    make_photos(src, 6)

    def no_space(self, images, ctx):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ThumbnailAnalyser, "analyse", no_space)
    first = ingest(plain, src, "c", workers=0)
    assert first["rejected"] == 0 and first["failed"] == 6
    assert first["failed_by_reason"] == {"io_error": 6}
    monkeypatch.undo()
    second = ingest(plain, src, "c", workers=0)
    assert second["ingested"] == 6
    assert_lake_ok(plain.root)


def test_a_file_that_vanished_is_retried_and_retry_rejected_reprocesses_bad_files(plain, tmp_path) -> None:
    src = tmp_path / "src"
    make_photos(src, 2)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path\n{src / 'p00000.jpg'}\n{src / 'p00001.jpg'}\n{src / 'gone.jpg'}\n{src / 'bad.jpg'}\n")
    (src / "bad.jpg").write_bytes(b"not an image at all")
    first = ingest(plain, manifest, "c", workers=0)
    assert first["ingested"] == 2 and first["failed_by_reason"] == {"vanished": 1}
    assert first["rejected"] == 1
    make_photos(tmp_path / "more", 1, seed=9)
    (tmp_path / "more" / "p00000.jpg").rename(src / "gone.jpg")
    (tmp_path / "more2").mkdir()
    make_photos(tmp_path / "more2", 1, seed=11)
    (tmp_path / "more2" / "p00000.jpg").replace(src / "bad.jpg")  # the bad file was fixed
    second = ingest(plain, manifest, "c", workers=0)
    assert second["ingested"] == 1  # the vanished one is back; the rejected one is not retried...
    third = ingest(plain, manifest, "c", workers=0, retry_rejected=True)
    assert third["ingested"] == 1 and third["rejected"] == 0  # ...unless asked
    assert len(plain.images("c")) == 4
    assert_lake_ok(plain.root)


def test_lake_files_and_folders_are_private(plain, tmp_path) -> None:
    src = tmp_path / "src"
    make_photos(src, 2)
    ingest(plain, src, "c", workers=0)
    loose = []
    for dirpath, dirs, files in os.walk(plain.root):
        for name in dirs + files:
            mode = stat.S_IMODE(os.lstat(os.path.join(dirpath, name)).st_mode)
            if mode & 0o077:
                loose.append((name, oct(mode)))
    assert not loose
    assert stat.S_IMODE(os.stat(plain.root / "catalog.sqlite").st_mode) == 0o600


def test_a_bad_index_setting_is_refused_before_it_is_written(tmp_path) -> None:
    """The API never writes a ``lake.json`` that the next open (and ``check``) would call damaged."""
    lk = Lake(tmp_path / "lake")
    try:
        before = (tmp_path / "lake" / "lake.json").read_bytes()
        with pytest.raises(BadInput, match="'index' is 'some/folder'"):
            lk.set_setting("index", "some/folder")
        assert (tmp_path / "lake" / "lake.json").read_bytes() == before and lk.settings["index"] == "faiss"
        lk.set_setting("note", "kept")
    finally:
        lk.close()
    again = Lake(tmp_path / "lake", create=False)
    again.close()
    assert again.settings["note"] == "kept"
    assert stat.S_IMODE(os.stat(tmp_path / "lake" / "lake.json").st_mode) == 0o600


@pytest.mark.damages_lake  # lake.json edited by hand to an index value no engine accepts
def test_a_non_milvus_index_setting_is_a_clear_error(tmp_path, monkeypatch) -> None:
    Lake(tmp_path / "lake").close()
    settings_file = tmp_path / "lake" / "lake.json"
    settings_file.write_text(json.dumps({**json.loads(settings_file.read_text()), "index": "some/folder"}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LakeDamaged, match="'index' is 'some/folder'"):
        Lake(tmp_path / "lake", create=False)
    assert not (tmp_path / "some").exists()
