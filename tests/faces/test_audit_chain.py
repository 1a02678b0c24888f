"""The audit log is tamper-evident: rewrites, deletions and reused ids are found; erasure is not one."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from gallery_fakes import BLUE, RED, FakePipeline, identity_vector, photo  # noqa: E402

from visionlake.cli import build_app  # noqa: E402
from visionlake.cli.common import run_cli  # noqa: E402
from visionlake.faces import Gallery, gallery  # noqa: E402
from visionlake.faces.audit import verify_chain  # noqa: E402
from visionlake.lake import Lake  # noqa: E402
from visionlake.service.audit_buffer import AuditBuffer  # noqa: E402


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One lake with two enrollments and three identifications, built once and copied per test."""
    tmp = tmp_path_factory.mktemp("audit")
    saved = os.environ.pop("VISIONLAKE_KEY", None)
    try:
        lk = Lake(tmp / "lake")
        pipe = FakePipeline()
        gallery.enroll(lk, "people", "Alice", [photo(tmp / "a.png", [(RED, 40, 40, 100)])], pipeline=pipe)
        gallery.enroll(lk, "people", "Bob", [photo(tmp / "b.png", [(BLUE, 40, 40, 100)])], pipeline=pipe)
        g = Gallery(lk, "people", pipeline=pipe)
        for colour in (RED, BLUE, RED):
            g.identify_vectors(identity_vector(colour))
        lk.close()
    finally:
        if saved is not None:
            os.environ["VISIONLAKE_KEY"] = saved
    return tmp / "lake"


@pytest.fixture
def lake(template, tmp_path, monkeypatch):
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    shutil.copytree(template, tmp_path / "lake")
    lk = Lake(tmp_path / "lake")
    yield lk
    lk.close()


def _verify(lake):
    with lake.session() as s:
        return verify_chain(s)


def _ids(lake):
    with lake.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT id FROM audit_log ORDER BY id"))]


def _sql(lake, stmt, **params):
    with lake.engine.begin() as conn:
        conn.execute(text(stmt), params)


def test_an_untouched_log_verifies_and_the_cli_says_so(lake, monkeypatch, capsys):
    out = _verify(lake)
    assert out["ok"] and out["chained_rows"] == 5 and out["first_broken_id"] is None
    monkeypatch.setattr(sys, "argv", ["visionlake", "--lake", str(lake.root), "audit", "verify"])
    assert run_cli(build_app()) == 0
    assert "audit log ok: 5 chained row(s)" in capsys.readouterr().out


def test_a_rewritten_row_is_found(lake, monkeypatch, capsys):
    third = _ids(lake)[2]
    _sql(lake, "UPDATE audit_log SET actor = 'somebody else' WHERE id = :i", i=third)
    out = _verify(lake)
    assert not out["ok"] and out["first_broken_id"] == third and "altered" in out["problem"]
    monkeypatch.setattr(sys, "argv", ["visionlake", "--lake", str(lake.root), "audit", "verify"])
    assert run_cli(build_app()) == 1
    assert f"audit log broken at row {third}" in capsys.readouterr().out


def test_changed_result_ids_are_found(lake):
    last = _ids(lake)[-1]
    _sql(lake, "UPDATE audit_log SET result_ids = '[\"person:2\"]' WHERE id = :i", i=last)
    out = _verify(lake)
    assert out["first_broken_id"] == last and "result ids were changed" in out["problem"]


def test_a_deleted_row_is_found_in_the_middle_and_at_the_end(lake):
    ids = _ids(lake)
    _sql(lake, "DELETE FROM audit_log WHERE id = :i", i=ids[1])
    out = _verify(lake)
    assert out["first_broken_id"] == ids[1] and "missing" in out["problem"]
    # restore nothing; on another log, cut the last row off
    _sql(lake, "DELETE FROM audit_log WHERE id > :i", i=ids[0])
    _sql(lake, "DELETE FROM audit_log WHERE id = :i", i=ids[0])
    out = _verify(lake)
    assert not out["ok"]


def test_cutting_off_the_last_rows_is_found(lake):
    ids = _ids(lake)
    _sql(lake, "DELETE FROM audit_log WHERE id = :i", i=ids[-1])
    out = _verify(lake)
    assert not out["ok"] and "the last rows were deleted" in out["problem"]


def test_a_row_inserted_with_a_reused_id_is_found(lake):
    ids = _ids(lake)
    with lake.engine.begin() as conn:
        row = dict(conn.execute(text("SELECT * FROM audit_log WHERE id = :i"), {"i": ids[2]}).mappings().one())
        conn.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": ids[2]})
        row["detail"] = "nothing happened here"
        cols = ", ".join(row)
        conn.execute(text(f"INSERT INTO audit_log ({cols}) VALUES ({', '.join(':' + c for c in row)})"), row)
    out = _verify(lake)
    assert out["first_broken_id"] == ids[2]
    # and the ids the lake hands out next never reuse one
    with lake.session() as s:
        from visionlake.faces import audit

        new_id = audit.record(s, "verify", None, [], detail="after")
    assert new_id == max(ids) + 1


def test_erasure_redacts_ids_and_the_chain_still_verifies(lake):
    report = gallery.forget(lake, "people", "Alice", scan_files=False)
    assert report["ok"]
    out = _verify(lake)
    assert out["ok"], out
    assert out["redacted_rows"] >= 2  # Alice's enroll entry and the identify entries that named her
    # a redaction that no redact entry covers is found
    with lake.engine.connect() as conn:
        bob_row = conn.execute(text("SELECT id FROM audit_log WHERE action = 'identify' AND "
                                    "result_ids LIKE '%person:2%'")).scalar()
    _sql(lake, "UPDATE audit_log SET ids_salt = NULL, result_ids = '[]' WHERE id = :i", i=bob_row)
    bad = _verify(lake)
    assert bad["first_broken_id"] == bob_row and "without a redact entry" in bad["problem"]


def test_the_service_buffer_writes_into_the_same_chain(lake):
    buf = AuditBuffer(lake, every_s=60)
    for i in range(5):
        buf.record("identify", "people", ["person:1"] if i % 2 else [], detail=f"buffered {i}", actor="key:7")
    assert buf.flush() == 5
    buf.close()
    out = _verify(lake)
    assert out["ok"] and out["chained_rows"] == 10
