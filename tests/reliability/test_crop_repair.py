"""Face crops are derived files (issue 12 item 9): ``check`` finds a missing or damaged crop and
``repair`` cuts it again from the source photo (box and landmarks are in the catalog), byte for byte;
an erased person's crops never come back, and a crop whose source is gone is reported, not faked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from visionlake.check import check_lake, repair_lake
from visionlake.lake import Lake

from .test_damage import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faces"))
from gallery_fakes import BLUE, GREEN, RED, FakePipeline, photo  # noqa: E402

from visionlake.faces import gallery  # noqa: E402
from visionlake.faces.models import Face, Person  # noqa: E402


@pytest.fixture
def people(tmp_path, monkeypatch):
    """A lake with Ada (two photos), Bob and Cy enrolled; the collection's pack is the fake one."""
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    monkeypatch.setattr(gallery, "get_pipeline", lambda *a, **k: FakePipeline())
    root = tmp_path / "lake"
    lk = Lake(root)
    pipe = FakePipeline()
    src = tmp_path / "src"
    gallery.enroll(lk, "people", "Ada", [photo(src / "a1.png", [(RED, 40, 40, 100)]),
                                         photo(src / "a2.png", [(RED, 100, 50, 90)])], pipeline=pipe)
    gallery.enroll(lk, "people", "Bob", [photo(src / "b1.png", [(BLUE, 30, 60, 110)])], pipeline=pipe)
    gallery.enroll(lk, "people", "Cy", [photo(src / "c1.png", [(GREEN, 50, 20, 95)])], pipeline=pipe)
    lk.close()
    return root, src


def crops_of(root: Path, name: str) -> list[Path]:
    lk = Lake(root, create=False)
    try:
        with lk.session() as s:
            pid = s.query(Person.id).filter(Person.name == name).scalar()
            return [root / c for (c,) in s.query(Face.crop).filter(Face.person_id == pid).order_by(Face.id)]
    finally:
        lk.close()


def test_missing_and_garbled_crops_are_found_and_regenerated_byte_identical(people, capsys) -> None:
    root, _src = people
    ada = crops_of(root, "Ada")
    before = [p.read_bytes() for p in ada]
    ada[0].unlink()
    ada[1].write_bytes(before[1][:60])
    code, out, _err = cli(["--lake", str(root), "check"], capsys)
    assert code == 1 and "face crop" in out
    rep = check_lake(root)
    assert sorted(p["file"] for p in rep["problems"] if p["kind"] == "crop") == sorted(
        str(p.relative_to(root)) for p in ada)
    assert all(p["repairable"] for p in rep["problems"])

    code, out, _err = cli(["--lake", str(root), "repair"], capsys)
    assert code == 0, out
    assert "2 face crops regenerated" in " ".join(out.split())
    assert [p.read_bytes() for p in ada] == before  # same pack, same decoder, same landmarks: same bytes
    assert check_lake(root)["ok"]


@pytest.mark.damages_lake  # the crop and its source photo are both gone: repair cannot make it whole
def test_a_crop_whose_source_photo_is_gone_is_reported_not_invented(people) -> None:
    root, src = people
    (cy,) = crops_of(root, "Cy")
    cy.unlink()
    (src / "c1.png").unlink()
    fixed = repair_lake(root)
    assert not fixed["ok"] and not cy.exists()
    (failed,) = [p for p in fixed["could_not"] if p["kind"] == "crop"]
    assert failed["file"] == str(cy.relative_to(root)) and "c1.png" in failed["problem"] and "gone" in failed["problem"]


def test_an_erased_persons_crops_are_not_regenerated(people) -> None:
    root, _src = people
    bob = crops_of(root, "Bob")
    (ada0, _) = crops_of(root, "Ada")
    lk = Lake(root, create=False)
    try:
        assert gallery.forget(lk, "people", "Bob", scan_files=False)["ok"]
    finally:
        lk.close()
    ada0.unlink()  # another crop to repair, so that repair really runs over the faces
    fixed = repair_lake(root)
    assert fixed["ok"], fixed
    assert ada0.exists() and not any(p.exists() for p in bob)  # the photo is still in src: not used


@pytest.mark.heavy  # loads dlib's models: about 10 s on a loaded 2-core machine
def test_a_real_dlib_crop_is_regenerated_byte_identical(tmp_path, monkeypatch) -> None:
    """The default pack cuts its crop with dlib's chip from the stored landmarks: same bytes again."""
    from visionlake.config import shared_data_dir

    photos = sorted((shared_data_dir() / "lfw" / "images" / "Tony_Blair").glob("*.jpg"))[:1]
    if not photos:
        pytest.skip(f"LFW not found under {shared_data_dir()} (set VISIONLAKE_DATA)")
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    root = tmp_path / "lake"
    lk = Lake(root)
    gallery.enroll(lk, "people", "Tony Blair", photos, jitters=0)
    lk.close()
    (crop,) = crops_of(root, "Tony Blair")
    before = crop.read_bytes()
    crop.unlink()
    fixed = repair_lake(root)
    assert fixed["ok"], fixed
    assert crop.read_bytes() == before
