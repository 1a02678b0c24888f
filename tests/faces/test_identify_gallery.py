"""The one Gallery object: what it caches, when it re-reads, and how few catalog trips a probe costs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).parent))
from gallery_fakes import BLUE, GREEN, RED, FakePipeline, identity_vector, photo  # noqa: E402

from visionlake.errors import BadInput  # noqa: E402
from visionlake.faces import Gallery, gallery, open_gallery  # noqa: E402
from visionlake.lake import Lake  # noqa: E402


@pytest.fixture
def lake(tmp_path, monkeypatch):
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    lk = Lake(tmp_path / "lake")
    yield lk
    lk.close()


@pytest.fixture
def pipe():
    return FakePipeline()


def _enroll(lake, pipe, tmp_path, name, colour, n=1):
    paths = [photo(tmp_path / f"in/{name}{i}.png", [(colour, 30 + 7 * i, 30, 90 + i)]) for i in range(n)]
    return gallery.enroll(lake, "people", name, paths, pipeline=pipe)


class _Counter:
    """Statements and transactions the catalog engine runs (what 'round trips' means here)."""

    def __init__(self, engine):
        self.statements: list[str] = []
        self.transactions = 0
        event.listen(engine, "before_cursor_execute", self._stmt)
        event.listen(engine, "begin", self._begin)
        self.engine = engine

    def _stmt(self, _conn, _cursor, statement, *_a):
        self.statements.append(statement.split()[0].upper())

    def _begin(self, _conn):
        self.transactions += 1

    def reset(self):
        self.statements.clear()
        self.transactions = 0

    def close(self):
        event.remove(self.engine, "before_cursor_execute", self._stmt)
        event.remove(self.engine, "begin", self._begin)


def test_warm_identify_costs_one_read_plus_the_audit_write(lake, pipe, tmp_path):
    _enroll(lake, pipe, tmp_path, "Alice", RED, 2)
    _enroll(lake, pipe, tmp_path, "Bob", BLUE)
    g = Gallery(lake, "people", pipeline=pipe)
    q = identity_vector(RED)
    assert g.identify_vectors(q)["faces"][0]["identity"] == "Alice"  # warms the caches
    counter = _Counter(lake.engine)
    try:
        out = g.identify_vectors(np.vstack([q, identity_vector(BLUE)]))
        assert [f["identity"] for f in out["faces"]] == ["Alice", "Bob"]
        # one read (the generation counter) + one transaction for the audit entry
        assert counter.transactions <= 2, counter.statements
        assert counter.statements.count("SELECT") <= 2, counter.statements
        assert counter.statements.count("INSERT") == 1, counter.statements
        # with an external audit sink (the service's buffer): a single statement
        sink: list = []
        g2 = Gallery(lake, "people", pipeline=pipe, audit=lambda *a: sink.append(a))
        g2.identify_vectors(q)
        counter.reset()
        g2.identify_vectors(q)
        assert counter.statements == ["SELECT"] and counter.transactions == 1
        assert sink[-1][0] == "identify" and sink[-1][2] == [f"person:{out['faces'][0]['matches'][0]['person_id']}"]
        # a photo costs the same
        g.identify(photo(tmp_path / "probe.png", [(RED, 10, 10, 80)]))
        counter.reset()
        assert g.identify(photo(tmp_path / "probe2.png", [(RED, 12, 10, 80)]))["faces"][0]["identity"] == "Alice"
        assert counter.transactions <= 2, counter.statements
    finally:
        counter.close()
    assert g.reloads == 1  # nothing changed: loaded once


def test_a_change_by_another_writer_is_seen_on_the_next_query(lake, pipe, tmp_path):
    _enroll(lake, pipe, tmp_path, "Alice", RED)
    g = open_gallery(lake, "people", pipeline=pipe)
    assert g.identify_vectors(identity_vector(GREEN))["faces"][0]["identity"] == "unknown"
    # another process (its own Lake object and connection) enrolls Green
    other = Lake(lake.root)
    try:
        paths = [photo(tmp_path / "in/g.png", [(GREEN, 40, 40, 90)])]
        gallery.enroll(other, "people", "Gwen", paths, pipeline=pipe)
    finally:
        other.close()
    assert g.identify_vectors(identity_vector(GREEN))["faces"][0]["identity"] == "Gwen"
    # and a forgotten person is never named again
    gallery.forget(lake, "people", "Alice", scan_files=False)
    out = g.identify_vectors(identity_vector(RED))
    assert out["faces"][0]["identity"] == "unknown"
    assert g.reloads == 3


def test_a_crash_before_the_index_save_is_repaired_on_reload(lake, pipe, tmp_path):
    _enroll(lake, pipe, tmp_path, "Alice", RED)
    g = Gallery(lake, "people", pipeline=pipe)
    g.identify_vectors(identity_vector(RED))
    from visionlake.faces.sync import face_index

    index = face_index(lake, "people", pipe.dim)
    ids = index.ids().tolist()
    index.remove(ids)  # as if the index save after a commit never happened
    with lake.session() as s:  # any catalog change moves the generation
        from visionlake.faces.models import Person

        s.get(Person, 1).name = "Alice A."
    assert g.identify_vectors(identity_vector(RED))["faces"][0]["identity"] == "Alice A."
    assert sorted(index.ids().tolist()) == sorted(ids)


def test_identify_vectors_checks_its_input_and_the_pack(lake, pipe, tmp_path):
    _enroll(lake, pipe, tmp_path, "Alice", RED)
    g = Gallery(lake, "people", pipeline=pipe)
    with pytest.raises(BadInput, match="must have 32 values"):
        g.identify_vectors(np.ones((1, 7)))
    with pytest.raises(BadInput, match="finite and non-zero"):
        g.identify_vectors(np.zeros((1, 32)))
    with pytest.raises(BadInput, match="top must be at least 1"):
        g.identify_vectors(identity_vector(RED), top=0)

    class OtherPack(FakePipeline):
        name = "other-v2"

    with pytest.raises(BadInput, match="holds faces embedded with 'fake-v1', not 'other-v2'"):
        Gallery(lake, "people", pipeline=OtherPack()).identify(photo(tmp_path / "p.png", [(RED, 10, 10, 80)]))
    lake.create_collection("empty", purpose="faces")
    with pytest.raises(BadInput, match="holds no faces yet"):
        Gallery(lake, "empty", pipeline=pipe).identify_vectors(identity_vector(RED))
