"""One writer of content-addressed files: atomic, 0600 files in 0700 folders, same rows for enroll and ingest."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from gallery_fakes import RED, FakePipeline, photo  # noqa: E402

from visionlake.faces import gallery  # noqa: E402
from visionlake.faces.analyser import face_records  # noqa: E402
from visionlake.faces.rows import face_row, record_vector  # noqa: E402
from visionlake.faces.sync import unseal  # noqa: E402
from visionlake.lake import Lake  # noqa: E402
from visionlake.lakefiles import store_bytes  # noqa: E402


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_store_bytes_is_atomic_private_and_stays_inside_the_lake(tmp_path):
    root = tmp_path / "lake"
    root.mkdir()
    dest = store_bytes(root, "collections/c/thumbs/ab/abc.jpg", b"x" * 10)
    assert dest.read_bytes() == b"x" * 10 and _mode(dest) == 0o600
    assert _mode(root / "collections") == 0o700 and _mode(dest.parent) == 0o700
    store_bytes(root, "collections/c/thumbs/ab/abc.jpg", b"y", skip_existing=True)
    assert dest.read_bytes() == b"x" * 10  # content-addressed: an existing file is the same file
    store_bytes(root, "collections/c/thumbs/ab/abc.jpg", b"z")
    assert dest.read_bytes() == b"z"
    assert [p.name for p in dest.parent.iterdir()] == ["abc.jpg"]  # no temp file left behind
    for bad in ("/etc/passwd", "../outside", "a/../../b"):
        with pytest.raises(ValueError, match="not a path inside the lake"):
            store_bytes(root, bad, b"")


def test_enrollment_and_probe_files_are_private(tmp_path, monkeypatch):
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    lake = Lake(tmp_path / "lake")
    pipe = FakePipeline()
    gallery.enroll(lake, "people", "Alice", [photo(tmp_path / "a.png", [(RED, 40, 40, 100)])], pipeline=pipe,
                   keep_photos=True)
    out = gallery.identify(lake, "people", photo(tmp_path / "p.png", [(RED, 10, 10, 80)]), pipeline=pipe,
                           keep_probe=True)
    written = [p for p in (lake.root / "collections").rglob("*") if p.is_file() and "index" not in p.parts]
    kinds = {p.relative_to(lake.root / "collections" / "people").parts[0] for p in written}
    assert kinds == {"thumbs", "crops", "enrolled", "probes"}
    assert out["probe_kept"] and (lake.root / out["probe_kept"]).exists()
    assert all(_mode(p) == 0o600 for p in written), [(p, oct(_mode(p))) for p in written]
    assert not [p for p in written if p.name.endswith(".tmp")]
    lake.close()


def test_ingestion_and_enrollment_build_the_same_face_row(tmp_path, monkeypatch):
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    lake = Lake(tmp_path / "lake")
    pipe = FakePipeline()
    img = Image.open(photo(tmp_path / "a.png", [(RED, 40, 40, 100)])).convert("RGB")
    (rec,) = face_records(pipe, img, lake.root, "people", "ab" * 32)
    assert _mode(lake.root / rec["crop"]) == 0o600
    row = face_row(lake.cipher, 1, 2, rec, pipe.name, person_id=3)
    assert (row.box, row.crop, row.pack, row.person_id) == (rec["box"], rec["crop"], "fake-v1", 3)
    assert row.embedding.startswith(b"VLK1")
    np.testing.assert_array_equal(unseal(lake.cipher, row.embedding), record_vector(rec))
    lake.close()
