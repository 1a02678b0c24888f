"""Acceptance 4 of the foundation: a corpus of bad files mixed with good ones."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from visionlake.catalog.models import Image as ImageRow
from visionlake.catalog.models import SourcePath
from visionlake.ingest import REASONS, ingest


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels but carries almost no data (decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = zlib.compress(b"\x00" * 100)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(data)) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
        + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    )


def _photo(seed: int, size: tuple[int, int] = (120, 90)) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size[1] // 10 + 1, size[0] // 10 + 1, 3), dtype=np.uint8)
    return Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)


def build_corpus(root: Path) -> dict[str, tuple[str, str | None]]:
    """Write the corpus; returns file name -> (expected status, expected reason or note)."""
    root.mkdir(parents=True)
    expected: dict[str, tuple[str, str | None]] = {}
    for i in range(6):
        _photo(i).save(root / f"good_{i}.jpg", quality=90)
        expected[f"good_{i}.jpg"] = ("ingested", None)
    (root / "empty.jpg").write_bytes(b"")
    expected["empty.jpg"] = ("rejected", "empty_file")
    (root / "text.jpg").write_text("this is not an image\n" * 10)
    expected["text.jpg"] = ("rejected", "not_an_image")
    buf = io.BytesIO()
    _photo(50, (400, 300)).save(buf, "JPEG", quality=95)
    (root / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    expected["truncated.jpg"] = ("rejected", "truncated")
    (root / "bomb.png").write_bytes(_png_header_only(30000, 30000))
    expected["bomb.png"] = ("rejected", "too_many_pixels")
    _photo(7).convert("CMYK").save(root / "cmyk.jpg", "JPEG")
    expected["cmyk.jpg"] = ("ingested", "CMYK -> RGB")
    arr16 = (np.linspace(0, 65535, 80 * 60).reshape(60, 80)).astype(np.uint16)
    Image.fromarray(arr16).save(root / "deep16.png")  # mode I;16
    expected["deep16.png"] = ("ingested", "16-bit")
    rot = _photo(8, (100, 60))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    rot.save(root / "rotated.jpg", exif=exif.tobytes())
    expected["rotated.jpg"] = ("ingested", "exif orientation 6 applied")
    frames = [_photo(20 + i, (64, 64)).convert("P") for i in range(3)]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    expected["anim.gif"] = ("ingested", "animated (3 frames): first frame")
    rgba = _photo(9).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(root / "alpha.png")
    expected["alpha.png"] = ("ingested", "with alpha -> RGB on white")
    _photo(10).convert("P").save(root / "palette.png")
    expected["palette.png"] = ("ingested", "P -> RGB")
    (root / "folder.jpg").mkdir()
    expected["folder.jpg"] = ("rejected", "not_a_file")
    os.symlink(root / "does-not-exist.jpg", root / "dangling.jpg")
    expected["dangling.jpg"] = ("rejected", "unreadable")
    locked = root / "locked.jpg"
    _photo(11).save(locked)
    if os.geteuid() != 0:  # root reads everything: the dangling link covers "unreadable" there
        locked.chmod(0)
        expected["locked.jpg"] = ("rejected", "unreadable")
    else:
        expected["locked.jpg"] = ("ingested", None)
    return expected


@pytest.mark.parametrize("workers", [0, 2])
def test_bad_files_get_documented_outcomes_and_good_ones_are_ingested(lake, tmp_path, workers):
    corpus = tmp_path / "corpus"
    expected = build_corpus(corpus)
    lake.create_collection("c", "plain")
    report = ingest(lake, corpus, "c", workers=workers)

    with lake.session() as s:
        rows = {Path(p.path).name: p for p in s.scalars(select(SourcePath))}
        images = {i.id: i for i in s.scalars(select(ImageRow))}
    assert set(rows) == set(expected), "every file must be accounted for"
    for name, (status, reason_or_note) in expected.items():
        row = rows[name]
        assert row.status == status, f"{name}: {row.status} ({row.reason}: {row.detail})"
        if status == "rejected":
            assert row.reason == reason_or_note, f"{name}: {row.reason} ({row.detail})"
            assert row.reason in REASONS and row.detail
        else:
            img = images[row.image_id]
            assert img.thumbnail and (lake.root / img.thumbnail).is_file()
            if reason_or_note:
                assert reason_or_note in (img.notes or ""), f"{name}: notes {img.notes!r}"
    n_bad = sum(1 for s, _ in expected.values() if s == "rejected")
    assert report["rejected"] == n_bad
    assert sum(report["rejected_by_reason"].values()) == n_bad
    assert report["ingested"] == len(expected) - n_bad


def test_exif_rotation_is_applied(lake, tmp_path):
    corpus = tmp_path / "corpus"
    build_corpus(corpus)
    lake.create_collection("c", "plain")
    ingest(lake, corpus, "c", workers=0)
    with lake.session() as s:
        img = s.scalar(select(ImageRow).where(ImageRow.path.endswith("rotated.jpg")))
    assert (img.width, img.height) == (60, 100)  # stored 100x60, displayed rotated


def test_second_run_ingests_nothing_new(lake, tmp_path):
    corpus = tmp_path / "corpus"
    build_corpus(corpus)
    lake.create_collection("c", "plain")
    first = ingest(lake, corpus, "c", workers=0)
    second = ingest(lake, corpus, "c", workers=0)
    assert first["ingested"] > 0
    assert second["ingested"] == 0 and second["rejected"] == 0
    assert second["already_done"] == first["seen"]


def test_exact_and_near_duplicates(lake, tmp_path):
    src = tmp_path / "dups"
    src.mkdir()
    img = _photo(1, (300, 200))
    img.save(src / "a.jpg", quality=92)
    (src / "b_copy.jpg").write_bytes((src / "a.jpg").read_bytes())
    img.resize((200, 133)).save(src / "c_small.jpg", quality=60)
    _photo(2, (300, 200)).save(src / "d_other.jpg", quality=92)
    lake.create_collection("c", "plain")
    report = ingest(lake, src, "c", workers=0)
    assert report["ingested"] == 3 and report["duplicates"] == 1 and report["near_duplicates"] == 1
    with lake.session() as s:
        a = s.scalar(select(ImageRow).where(ImageRow.path.endswith("a.jpg")))
        dup = s.scalar(select(SourcePath).where(SourcePath.path.endswith("b_copy.jpg")))
        small = s.scalar(select(ImageRow).where(ImageRow.path.endswith("c_small.jpg")))
        other = s.scalar(select(ImageRow).where(ImageRow.path.endswith("d_other.jpg")))
    assert dup.status == "duplicate" and dup.image_id == a.id
    assert small.near_duplicate_of == a.id
    assert other.near_duplicate_of is None


def test_empty_source_is_a_clear_error(lake, tmp_path):
    from visionlake.errors import BadInput

    (tmp_path / "empty").mkdir()
    lake.create_collection("c", "plain")
    with pytest.raises(BadInput, match="no image files"):
        ingest(lake, tmp_path / "empty", "c", workers=0)
    with pytest.raises(BadInput, match="does not exist"):
        ingest(lake, tmp_path / "missing", "c", workers=0)
