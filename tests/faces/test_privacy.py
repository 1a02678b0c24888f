"""Privacy: forget leaves no trace, templates are unreadable without the key, every call is audited."""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from gallery_fakes import BLUE, RED, FakePipeline, photo  # noqa: E402

from visionlake.crypto import DecryptionError  # noqa: E402
from visionlake.faces import gallery  # noqa: E402
from visionlake.faces.models import Face  # noqa: E402
from visionlake.lake import Lake  # noqa: E402


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    lake = Lake(tmp_path / "lake")
    pipe = FakePipeline()
    alice = [photo(tmp_path / "in/alice1.png", [(RED, 40, 40, 100)]),
             photo(tmp_path / "in/alice2.png", [(RED, 120, 60, 90)])]
    bob = [photo(tmp_path / "in/bob1.png", [(BLUE, 50, 50, 110)])]
    gallery.enroll(lake, "people", "Alice Liddell", alice, consent="Alice Liddell agreed", keep_photos=True,
                   pipeline=pipe)
    gallery.enroll(lake, "people", "Bob", bob, pipeline=pipe)
    yield lake, pipe, alice, tmp_path
    lake.close()


def _templates(pipe, paths):
    out = []
    for p in paths:
        img = Image.open(p).convert("RGB")
        out.append(pipe.embed(img, pipe.detect(img))[0])
    return out


def _all_lake_bytes(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


def _all_rows_text(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        parts = []
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            for row in con.execute(f'SELECT * FROM "{table}"'):
                parts.append(f"{table}: " + " | ".join(str(v) for v in row))
        return "\n".join(parts)
    finally:
        con.close()


def test_forget_leaves_no_trace_and_identify_then_answers_unknown(env):
    lake, pipe, alice, tmp_path = env
    probe = photo(tmp_path / "probe/a.png", [(RED, 10, 10, 80)])
    assert gallery.identify(lake, "people", probe, pipeline=pipe)["faces"][0]["identity"] == "Alice Liddell"
    with lake.session() as s:
        alice_faces = [f.id for f in s.query(Face).filter(Face.person_id.is_not(None)) if f.crop]
        alice_id = s.execute(gallery.select(gallery.Person.id).where(gallery.Person.name == "Alice Liddell")
                             ).scalar_one()
        alice_faces = [f.id for f in s.query(Face).filter(Face.person_id == alice_id)]
        crops = [f.crop for f in s.query(Face).filter(Face.person_id == alice_id)]
    assert len(alice_faces) == 2 and all((lake.root / c).exists() for c in crops)
    vectors = _templates(pipe, alice)

    report = gallery.forget(lake, "people", "Alice Liddell")
    assert report["ok"], report["checks"]
    assert report["removed"]["faces"] == 2 and report["removed"]["vectors"] == 2
    assert report["removed"]["images"] == 2  # enrollment-only photos: rows, thumbnails, stored copies

    # independent search: every file under the lake, every row of every table
    for path, data in _all_lake_bytes(lake.root):
        assert b"Alice Liddell" not in data, path
        for v in vectors:
            assert v.astype(np.float32).tobytes() not in data, path
    rows = _all_rows_text(lake.root / "catalog.sqlite")
    assert "Alice" not in rows
    for fid in alice_faces:
        assert f"face:{fid}" not in rows
    assert f"person:{alice_id}" not in rows
    for c in crops:
        assert not (lake.root / c).exists()
    assert not list((lake.root / "collections" / "people").rglob("enrolled/*/*"))
    index = gallery.face_index(lake, "people", pipe.dim)
    assert not set(index.ids().tolist()) & set(alice_faces)
    fresh = gallery._reload_index_ids(lake, "people", pipe.dim)
    assert not fresh & set(alice_faces)

    assert gallery.identify(lake, "people", probe, pipeline=pipe)["faces"][0]["identity"] == "unknown"
    bob = photo(tmp_path / "probe/b.png", [(BLUE, 10, 10, 80)])
    assert gallery.identify(lake, "people", bob, pipeline=pipe)["faces"][0]["identity"] == "Bob"
    assert gallery.audit_log(lake, action="forget")[0]["detail"].startswith("erased 1 person")


def test_forget_unknown_person_is_not_found(env):
    lake, *_ = env
    from visionlake.errors import NotFound

    with pytest.raises(NotFound, match="no person named 'Carol'.*enrolled: Alice Liddell, Bob"):
        gallery.forget(lake, "people", "Carol")


def test_templates_are_encrypted_at_rest_and_need_the_key(env, monkeypatch):
    lake, pipe, alice, tmp_path = env
    vectors = _templates(pipe, alice)
    for path, data in _all_lake_bytes(lake.root):
        for v in vectors:
            assert v.astype(np.float32).tobytes() not in data, path
            assert v.astype(np.float32).tobytes()[:64] not in data, path
    key_file = lake.root / "keys" / "lake.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    with lake.session() as s:
        blob = s.query(Face).first().embedding
    assert blob.startswith(b"VLK1") and len(blob) > pipe.dim * 4

    # the same lake opened with another key: a clear decryption error, never garbage matches
    monkeypatch.setenv("VISIONLAKE_KEY", base64.b64encode(os.urandom(32)).decode())
    other = Lake(lake.root)
    probe = photo(tmp_path / "probe/a.png", [(RED, 10, 10, 80)])
    with pytest.raises(DecryptionError, match="wrong key"):
        gallery.identify(other, "people", probe, pipeline=pipe)
    other.close()


def test_audit_log_records_each_identify_and_keeps_no_probe(env):
    lake, pipe, _alice, tmp_path = env
    before = {p for p in lake.root.rglob("*") if p.is_file() and "catalog" not in p.name}
    probes = [photo(tmp_path / "probe/a.png", [(RED, 10, 10, 80)]),
              photo(tmp_path / "probe/b.png", [(BLUE, 10, 10, 80)]),
              photo(tmp_path / "probe/c.png", [(RED, 10, 10, 80), (BLUE, 150, 10, 80)])]
    for p in probes:
        gallery.identify(lake, "people", p, pipeline=pipe, actor="analyst-7")
    entries = gallery.audit_log(lake, action="identify")
    assert len(entries) == 3
    assert all(e["actor"] == "analyst-7" and e["collection"] == "people" for e in entries)
    assert [len(e["result_ids"]) for e in entries] == [2, 1, 1]  # newest first: two people, then one each
    assert all("probe not kept" in e["detail"] for e in entries)
    after = {p for p in lake.root.rglob("*") if p.is_file() and "catalog" not in p.name}
    assert after == before  # no probe pixels, crops or thumbnails written

    kept = gallery.identify(lake, "people", probes[0], keep_probe=True, pipeline=pipe)
    assert (lake.root / kept["probe_kept"]).exists()
    entry = gallery.audit_log(lake, action="identify")[0]
    # the kept probe is a typed result id (found through the audit log, redacted by erasure), and the
    # chained note, which can never be redacted, names no file and no photo hash
    assert f"probe:{kept['probe_kept']}" in entry["result_ids"]
    assert "probe kept" in entry["detail"] and Path(kept["probe_kept"]).stem not in entry["detail"]
