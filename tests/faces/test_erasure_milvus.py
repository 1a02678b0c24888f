"""Milvus holds templates unencrypted: refused unless acknowledged, and erased from its files too.

Issue 12 item 3: with Milvus Lite the templates were stored in plaintext (the README said
encrypted) and survived ``forget`` in the segment and HNSW files, while the verification scanned
only the lake folder. Measured with milvus-lite 3.2: deleted vectors stay in the data and HNSW
files even after a completed compaction, so erasure rebuilds the Lite collection from the catalog,
and the verification scans the engine's files as well.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from gallery_fakes import BLUE, RED, FakePipeline, photo  # noqa: E402

from visionlake.errors import BadInput  # noqa: E402
from visionlake.faces import gallery  # noqa: E402
from visionlake.faces.models import Face  # noqa: E402
from visionlake.faces.sync import MILVUS_PLAINTEXT_OK  # noqa: E402
from visionlake.lake import Lake  # noqa: E402


def test_milvus_engine_is_refused_for_face_templates_without_acknowledgement(tmp_path, monkeypatch):
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    lake = Lake(tmp_path / "lake")
    lake.set_setting("index", f"milvus-lite:{tmp_path / 'milvus' / 'faces.db'}")
    alice = photo(tmp_path / "in/alice1.png", [(RED, 40, 40, 100)])
    with pytest.raises(BadInput, match=f"stores face templates unencrypted.*{MILVUS_PLAINTEXT_OK}"):
        gallery.enroll(lake, "people", "Alice", [alice], pipeline=FakePipeline())
    with lake.session() as s:
        assert s.query(Face).count() == 0  # refused before anything was written
    assert not (tmp_path / "milvus").exists()
    lake.close()


@pytest.mark.heavy
def test_forget_removes_templates_from_milvus_lite_files(tmp_path, monkeypatch):
    pytest.importorskip("milvus_lite")  # an optional extra
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    lake = Lake(tmp_path / "lake")
    db = tmp_path / "milvus" / "faces.db"
    lake.set_setting("index", f"milvus-lite:{db}")
    lake.set_setting(MILVUS_PLAINTEXT_OK, True)
    pipe = FakePipeline()
    alice = [photo(tmp_path / "in/alice1.png", [(RED, 40, 40, 100)]),
             photo(tmp_path / "in/alice2.png", [(RED, 120, 60, 90)])]
    bob = [photo(tmp_path / "in/bob1.png", [(BLUE, 50, 50, 110)])]
    gallery.enroll(lake, "people", "Alice Liddell", alice, consent="yes", pipeline=pipe, jitters=0)
    gallery.enroll(lake, "people", "Bob", bob, pipeline=pipe, jitters=0)

    def prefixes(paths):  # the first 8 floats of each template: how Milvus' files hold them
        out = []
        for p in paths:
            img = Image.open(p).convert("RGB")
            out.append(np.asarray(pipe.embed(img, pipe.detect(img))[0], dtype=np.float32)[:8].tobytes())
        return out

    def files_holding(needles):
        return sorted({str(f.relative_to(db)) for f in db.rglob("*") if f.is_file()
                       for n in needles if n in f.read_bytes()})

    index = gallery.face_index(lake, "people", pipe.dim)
    index.save()
    alice_bytes, bob_bytes = prefixes(alice), prefixes(bob)
    assert files_holding(alice_bytes)  # plaintext in Milvus: why it needs the acknowledgement

    report = gallery.forget(lake, "people", "Alice Liddell")
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    assert any("milvus-lite: collection rebuilt" in c["check"] for c in report["checks"])
    assert any("index engine's files" in c["check"] for c in report["checks"])
    assert files_holding(alice_bytes) == []  # no deleted vector left in segment or HNSW files
    assert files_holding(bob_bytes)  # the others are still there
    probe = photo(tmp_path / "probe/b.png", [(BLUE, 10, 10, 80)])
    assert gallery.identify(lake, "people", probe, pipeline=pipe)["faces"][0]["identity"] == "Bob"
    lake.close()
