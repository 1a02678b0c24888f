"""``analyse`` on a faces collection: faces replaced, identities carried, index in step (toy pack)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import select

from visionlake.faces.models import Face, Person
from visionlake.faces.packs import PackInfo
from visionlake.ingest import ingest
from visionlake.ingest.analyse import analyse

HERE = Path(__file__).parent


def test_reanalysing_faces_keeps_people_and_the_index_in_step(lake, tmp_path, monkeypatch):
    from visionlake.faces import packs

    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setitem(packs.PACKS, "toy", "toy_pack:build")
    monkeypatch.setitem(packs.PACK_INFO, "toy", PackInfo("toy", "toy-space", 3, "test", True, None, "tests"))
    src = tmp_path / "src"
    src.mkdir()
    for i, colour in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200)]):
        Image.new("RGB", (64, 48), colour).save(src / f"p{i}.png")
    lake.create_collection("c", "faces", settings={"faces_options": {"pack": "toy"}})
    ingest(lake, src, "c", workers=0)
    col = lake.collection("c")
    with lake.session() as s:
        faces = s.scalars(select(Face).order_by(Face.id)).all()
        assert len(faces) == 3 and {f.pack for f in faces} == {"toy-space"}
        p = Person(collection_id=col.id, name="Red")
        s.add(p)
        s.flush()
        faces[0].person_id = p.id
        old_ids = [f.id for f in faces]
    rep = analyse(lake, "c", analysers=["faces"], workers=0)
    assert rep["analysed"] == 3 and rep["missing"] == 0
    with lake.session() as s:
        rows = s.execute(select(Face.id, Face.person_id, Face.image_id).order_by(Face.image_id)).all()
    assert len(rows) == 3 and not set(old_ids) & {r[0] for r in rows}  # replaced, not duplicated
    assert [r[1] is not None for r in rows] == [True, False, False]  # Red is still Red
    index = lake.index("c", "faces", 3, "cosine", encrypted=True)
    assert sorted(index.ids().tolist()) == sorted(r[0] for r in rows)
    hit = index.search(np.array([[1.0, 0.0, 0.0]], dtype=np.float32), k=1)[0][0]
    assert hit.id == rows[0][0]
