"""``faces switch-pack``: re-embed a dlib collection with arcface-s, keep identities, erase old templates."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from sqlalchemy import select

from visionlake.errors import BadInput
from visionlake.faces.collection_pack import LicenceNotAccepted, accept_licence, pack_of, pipeline_for
from visionlake.faces.gallery import enroll, get_pipeline, identify
from visionlake.faces.models import Face, Person
from visionlake.faces.switch import FaceSwitchAnalyser, switch_pack
from visionlake.faces.sync import unseal
from visionlake.ingest import ingest
from visionlake.lake import Lake


def _people(lk: Lake) -> dict[str, int]:
    with lk.session() as s:
        rows = s.execute(select(Person.name, Face.id).join(Face, Face.person_id == Person.id)).all()
    out: dict[str, int] = {}
    for name, _fid in rows:
        out[name] = out.get(name, 0) + 1
    return out


@pytest.mark.heavy
def test_switch_pack_keeps_people_and_leaves_no_old_template(tmp_path, lfw_image_paths, real_model, monkeypatch):
    real_model("arcface-s")
    monkeypatch.setenv("VISIONLAKE_ACTOR", "tester")
    src = tmp_path / "photos"
    src.mkdir()
    names = list(lfw_image_paths)[:3]
    for n in names:
        for p in lfw_image_paths[n][:2]:
            shutil.copy(p, src / p.name)
    lk = Lake(tmp_path / "lake")
    lk.create_collection("people", "faces")
    ingest(lk, src, "people", workers=0)
    dlib = get_pipeline()
    # one person enrolled from a photo outside the ingested folder, one from an ingested photo (linked)
    enroll(lk, "people", "Alpha", [str(lfw_image_paths[names[0]][2])], pipeline=dlib, jitters=0)
    enroll(lk, "people", "Beta", [str(src / lfw_image_paths[names[1]][0].name)], pipeline=dlib, jitters=0)
    with lk.session() as s:
        old = [(bytes(b), unseal(lk.cipher, b)) for b in s.scalars(select(Face.embedding))]
    assert len(old) >= 7 and {len(v) for _, v in old} == {128}
    before = _people(lk)
    assert before == {"Alpha": 1, "Beta": 1}

    with pytest.raises(LicenceNotAccepted, match="accept-licence non-commercial"):
        switch_pack(lk, "people", "arcface-s", workers=0)
    accept_licence(lk, "arcface-s", "non-commercial")
    (src / lfw_image_paths[names[2]][1].name).unlink()  # a source photo gone since ingestion

    # a crash in the middle of re-embedding: the collection says so, and refuses identification
    boom = {"n": 0}
    real_persist = FaceSwitchAnalyser.persist

    def crashing(self, *a, **k):
        boom["n"] += 1
        if boom["n"] == 3:
            raise RuntimeError("simulated crash")
        return real_persist(self, *a, **k)

    monkeypatch.setattr(FaceSwitchAnalyser, "persist", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        switch_pack(lk, "people", "arcface-s", workers=0, chunk_size=2)
    monkeypatch.setattr(FaceSwitchAnalyser, "persist", real_persist)
    assert pack_of(lk.collection("people")) == "arcface-s"
    with pytest.raises(BadInput, match="being switched"):
        identify(lk, "people", str(lfw_image_paths[names[0]][3]), pipeline=pipeline_for(lk, "people"))
    with pytest.raises(BadInput, match="finish that first"):
        switch_pack(lk, "people", "dlib", workers=0)

    rep = switch_pack(lk, "people", "arcface-s", workers=0)
    assert rep["ok"], rep["checks"]
    assert rep["resumed"] and rep["missing"] == 1 and rep["from"] == "dlib"
    assert any("old template" in c["check"] for c in rep["checks"])  # the byte scan ran
    with lk.session() as s:
        packs = set(s.scalars(select(Face.pack)))
        blobs = s.scalars(select(Face.embedding)).all()
    assert packs == {"arcface-s"} and {len(unseal(lk.cipher, b)) for b in blobs} == {512}
    assert _people(lk) == before  # enrolled people kept their identity (and their faces)
    assert lk.index_header("people", "faces")["dim"] == 512
    # independent byte scan of every lake file for every old template (plaintext and ciphertext)
    from visionlake.faces.erasure import scan_lake_files

    patterns = {}
    for i, (blob, vec) in enumerate(old):
        patterns[f"f32 {i}"] = np.asarray(vec, np.float32).tobytes()
        patterns[f"ct {i}"] = blob
    hits, scanned = scan_lake_files(lk.root, patterns)
    assert scanned > 0 and hits == []
    # identification now runs in the new space
    out = identify(lk, "people", str(lfw_image_paths[names[0]][3]), pipeline=pipeline_for(lk, "people"))
    assert out["faces"][0]["identity"] == "Alpha"
    again = switch_pack(lk, "people", "arcface-s", workers=0)
    assert again["changed"] is False
    lk.close()
