"""Every faces route that detects or embeds uses the collection's recorded pack, not the lake's default.

The collection here uses the one-module toy pack of ``tests/faces/toy_pack.py``: its detector "finds"
the middle half of any photo, where the default (dlib HOG) finds nothing in a plain-colour image, so
which detector answered is plain from the boxes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_helpers import auth, png_bytes

from visionlake.lake import Lake
from visionlake.service.app import create_app
from visionlake.service.auth import create_key
from visionlake.service.limits import ServiceLimits

FACES_TESTS = Path(__file__).resolve().parents[1] / "faces"


@pytest.fixture()
def svc(tmp_path, monkeypatch):
    from visionlake.faces import packs
    from visionlake.faces.collection_pack import set_collection_pack

    monkeypatch.syspath_prepend(str(FACES_TESTS))
    monkeypatch.setitem(packs.PACKS, "toy", "toy_pack:build")
    monkeypatch.setitem(packs.PACK_INFO, "toy", packs.PackInfo("toy", "toy-space", 3, "test only", True, None,
                                                               "tests/faces/toy_pack.py"))
    lake = Lake(tmp_path / "lake")
    lake.create_collection("toys", "faces")
    set_collection_pack(lake, "toys", "toy")
    lake.create_collection("people", "faces")  # the default pack
    lake.create_collection("notes", "plain")
    key = create_key(lake, "admin", name="t")["key"]
    app = create_app(lake=lake, limits=ServiceLimits(rate_per_s=1e5, burst=1e5), job_workers=0)
    with TestClient(app) as client:
        yield client, lake, auth(key)
    lake.close()


def _img(colour: tuple[int, int, int] = (200, 30, 30), field: str = "image") -> tuple[str, tuple[str, bytes, str]]:
    return (field, ("plain.png", png_bytes((200, 160), colour), "image/png"))


def test_detect_uses_the_collections_own_detector(svc):
    client, _lake, h = svc
    r = client.post("/collections/toys/faces/detect", files=[_img()], headers=h)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["pack"] == "toy" and [f["box"] for f in out["faces"]] == [[50, 40, 150, 120]]
    # the lake-wide route names the collection in a form field and gets the same answer
    r = client.post("/faces/detect", files=[_img()], data={"collection": "toys"}, headers=h)
    assert r.status_code == 200 and r.json() == out
    # without a collection, or for a collection on the default pack: the default detector finds nothing
    for url, data in (("/faces/detect", {}), ("/collections/people/faces/detect", {})):
        r = client.post(url, files=[_img()], data=data, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["pack"] == "dlib" and r.json()["faces"] == []


def test_detect_names_missing_and_non_face_collections(svc):
    client, lake, h = svc
    r = client.post("/collections/nope/faces/detect", files=[_img()], headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    # a key scoped to another collection learns nothing about this one: the same 404 as a missing one
    scoped = auth(create_key(lake, "viewer", ["people"], name="p")["key"])
    for url, data in (("/collections/toys/faces/detect", {}), ("/faces/detect", {"collection": "toys"})):
        r = client.post(url, files=[_img()], data=data, headers=scoped)
        assert r.status_code == 404 and "toy" not in r.text.replace("'toys'", ""), r.text
    r = client.post("/faces/detect", files=[_img()], data={"collection": "notes"}, headers=h)
    assert r.status_code == 400 and "not a faces one" in r.json()["error"]["message"]


def test_detect_follows_a_pack_chosen_after_the_service_opened_the_collection(svc):
    from visionlake.faces.collection_pack import set_collection_pack

    client, lake, h = svc
    r = client.post("/collections/people/faces/detect", files=[_img()], headers=h)
    assert r.json()["pack"] == "dlib"
    set_collection_pack(lake, "people", "toy")  # e.g. `faces use-pack` from the CLI while the service runs
    r = client.post("/collections/people/faces/detect", files=[_img()], headers=h)
    assert r.json()["pack"] == "toy" and len(r.json()["faces"]) == 1


def test_verify_enroll_and_identify_embed_with_the_collections_pack(svc):
    client, _lake, h = svc
    r = client.post("/faces/verify", files=[_img(field="a"), _img((190, 40, 35), field="b")],
                    data={"collection": "toys", "threshold": "0.99"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["pack"] == "toy-space" and r.json()["same"] is True
    r = client.post("/faces/verify", files=[_img(field="a"), _img((20, 30, 220), field="b")],
                    data={"collection": "toys", "threshold": "0.99"}, headers=h)
    assert r.status_code == 200 and r.json()["same"] is False

    r = client.post("/collections/toys/people", data={"person": "Red", "consent": "test record"},
                    files=[_img(field="files")], headers=h)
    assert r.status_code == 201, r.text
    r = client.post("/collections/toys/faces/identify", files=[_img((195, 35, 30))],
                    data={"threshold": "0.99"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["faces"][0]["identity"] == "Red" and r.json()["faces"][0]["box"] == [50, 40, 150, 120]
