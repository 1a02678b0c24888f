"""The REST API through FastAPI's TestClient: auth, roles, scopes, limits, jobs, faces, privacy."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from service_helpers import auth, png_bytes, wait_job

from visionlake.lake import Lake
from visionlake.service.app import create_app
from visionlake.service.auth import create_key
from visionlake.service.limits import ServiceLimits


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("svc")
    lake = Lake(root / "lake")
    lake.create_collection("alpha", "plain")
    lake.create_collection("beta", "plain")
    lake.create_collection("people", "faces")
    keys = SimpleNamespace(
        admin=create_key(lake, "admin", name="root")["key"],
        editor=create_key(lake, "editor", name="ed")["key"],
        viewer=create_key(lake, "viewer", name="look")["key"],
        alpha_editor=create_key(lake, "editor", ["alpha"], name="alpha-ed")["key"],
        alpha_admin=create_key(lake, "admin", ["alpha", "people"], name="alpha-admin")["key"],
    )
    src = root / "src"
    src.mkdir()
    app = create_app(lake=lake, limits=ServiceLimits(rate_per_s=1000, burst=1000), ingest_roots=[src],
                     job_workers=0, retention_interval_s=3600)
    with TestClient(app) as client:
        yield SimpleNamespace(client=client, keys=keys, lake=lake, root=root, src=src)
    lake.close()


# ---------------------------------------------------------------------------------------------- auth
def test_health_needs_no_key_and_reveals_no_paths(env):
    r = env.client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["catalog"] == "ok"
    assert body["areas"]["faces"] is True
    assert str(env.root) not in r.text


@pytest.mark.parametrize("path", ["/collections", "/me", "/metrics", "/audit", "/admin/keys",
                                  "/collections/alpha/images", "/admin/retention"])
def test_every_endpoint_but_health_needs_a_key(env, path):
    r = env.client.get(path)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"] == "Bearer"
    r = env.client.get(path, headers=auth("vlk_0000_nope"))
    assert r.status_code == 401
    r = env.client.get(path, headers={"X-API-Key": env.keys.admin[:-1] + "x"})  # right prefix, wrong secret
    assert r.status_code == 401


def test_x_api_key_header_and_me(env):
    r = env.client.get("/me", headers={"X-API-Key": env.keys.alpha_editor})
    assert r.status_code == 200
    assert r.json() == {"key_id": r.json()["key_id"], "name": "alpha-ed", "role": "editor", "collections": ["alpha"]}


def test_keys_are_shown_once_stored_hashed_and_revocable(env):
    c, admin = env.client, auth(env.keys.admin)
    r = c.post("/admin/keys", json={"role": "viewer", "collections": ["beta"], "name": "tmp"}, headers=admin)
    assert r.status_code == 201
    created = r.json()
    key = created["key"]
    assert key.startswith("vlk_") and created["collections"] == ["beta"]
    listing = c.get("/admin/keys", headers=admin)
    assert listing.status_code == 200
    assert key not in listing.text and key.split("_", 2)[2] not in listing.text
    assert "key" not in listing.json()[0] and "secret_hash" not in listing.json()[0]
    # the catalog holds no trace of the secret either (grep in another process: opening and closing the
    # database file here would drop this process's SQLite locks)
    grep = subprocess.run(["grep", "-rcF", key.split("_", 2)[2], str(env.root / "lake")], capture_output=True)
    assert grep.returncode == 1, grep.stdout
    assert c.get("/collections", headers=auth(key)).status_code == 200
    r = c.delete(f"/admin/keys/{created['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert c.get("/collections", headers=auth(key)).status_code == 401
    assert c.delete("/admin/keys/99999", headers=admin).status_code == 404
    bad = c.post("/admin/keys", json={"role": "viewer", "collections": ["nope"]}, headers=admin)
    assert bad.status_code == 404


@pytest.mark.parametrize("who", ["viewer", "editor", "alpha_admin"])
def test_key_management_needs_an_unscoped_admin(env, who):
    key = getattr(env.keys, who)
    for method, path, body in [("get", "/admin/keys", None), ("post", "/admin/keys", {"role": "admin"}),
                               ("delete", "/admin/keys/1", None), ("put", "/admin/retention", {"days": 1}),
                               ("post", "/admin/retention/purge", None)]:
        r = env.client.request(method.upper(), path, json=body, headers=auth(key))
        assert r.status_code == 403, (who, path, r.text)
        assert r.json()["error"]["code"] == "forbidden"


def test_roles_viewer_cannot_write(env):
    c, v = env.client, auth(env.keys.viewer)
    assert c.post("/collections", json={"name": "x1"}, headers=v).status_code == 403
    assert c.delete("/collections/alpha", headers=v).status_code == 403
    r = c.post("/collections/alpha/jobs", files=[("files", ("a.png", png_bytes(), "image/png"))], headers=v)
    assert r.status_code == 403
    assert c.get("/audit", headers=v).status_code == 403
    assert c.get("/audit", headers=auth(env.keys.editor)).status_code == 403


# ---------------------------------------------------------------------------------------------- collections
def test_collections_create_get_delete(env):
    c, admin = env.client, auth(env.keys.admin)
    r = c.post("/collections", json={"name": "tmpcol", "purpose": "fashion"}, headers=admin)
    assert r.status_code == 201 and r.json()["purpose"] == "fashion" and r.json()["images"] == 0
    assert c.post("/collections", json={"name": "tmpcol"}, headers=admin).status_code == 409
    assert c.post("/collections", json={"name": "x", "purpose": "cars"}, headers=admin).status_code == 422
    assert c.post("/collections", json={"name": "../etc"}, headers=admin).status_code == 422
    assert c.get("/collections/tmpcol", headers=auth(env.keys.viewer)).json()["name"] == "tmpcol"
    assert c.delete("/collections/tmpcol", headers=admin).json() == {"deleted": "tmpcol"}
    assert c.get("/collections/tmpcol", headers=admin).status_code == 404
    # a scoped admin cannot create collections outside its scope
    assert c.post("/collections", json={"name": "other"}, headers=auth(env.keys.alpha_admin)).status_code == 403


def test_scoped_key_lists_only_its_collections(env):
    names = [c["name"] for c in env.client.get("/collections", headers=auth(env.keys.alpha_editor)).json()]
    assert names == ["alpha"]
    everything = [c["name"] for c in env.client.get("/collections", headers=auth(env.keys.viewer)).json()]
    assert {"alpha", "beta", "people"} <= set(everything)


@pytest.mark.parametrize("method,path", [
    ("GET", "/collections/{c}"), ("GET", "/collections/{c}/images"), ("GET", "/collections/{c}/jobs"),
    ("GET", "/collections/{c}/jobs/1"), ("POST", "/collections/{c}/jobs/1/cancel"),
    ("GET", "/collections/{c}/images/1/thumbnail"), ("GET", "/collections/{c}/people"),
    ("GET", "/collections/{c}/groups"), ("DELETE", "/collections/{c}/people/1"),
    ("POST", "/collections/{c}/faces/identify-embedding"), ("GET", "/collections/{c}/faces/1/crop"),
])
def test_other_collections_are_404_not_403(env, method, path):
    """A key for 'alpha' gets exactly the answer for a collection that does not exist."""
    key = auth(env.keys.alpha_editor)
    body = {"embeddings": [[0.1] * 128]} if "embedding" in path else None
    hidden = env.client.request(method, path.format(c="beta"), headers=key, json=body)
    missing = env.client.request(method, path.format(c="zzz"), headers=key, json=body)
    assert hidden.status_code == 404 == missing.status_code, hidden.text
    assert hidden.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    hidden_msg = hidden.json()["error"]["message"].replace("beta", "X")
    assert hidden_msg == missing.json()["error"]["message"].replace("zzz", "X")
    assert "alpha" not in hidden.text and "people" not in hidden.text


def test_scoped_audit_shows_only_own_collections(env):
    r = env.client.get("/audit?collection=beta", headers=auth(env.keys.alpha_admin))
    assert r.status_code == 200 and r.json() == []


# ---------------------------------------------------------------------------------------------- limits
def test_body_size_limit_gives_413(env, tmp_path):
    lake = Lake(tmp_path / "small")
    key = create_key(lake, "admin")["key"]
    app = create_app(lake=lake, limits=ServiceLimits(max_body_bytes=10_000, max_upload_bytes=20_000))
    with TestClient(app) as c:
        big = b"\0" * 50_000
        r = c.post("/faces/detect", files={"image": ("x.png", big, "image/png")}, headers=auth(key))
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "body_too_large"
        r = c.post("/collections", content=b"{" + b" " * 20_000 + b"}", headers={**auth(key),
                   "content-type": "application/json"})
        assert r.status_code == 413
        # a chunked body without Content-Length is cut off as well
        r = c.post("/collections", content=iter([b"{", b" " * 8_000, b" " * 8_000, b"}"]),
                   headers={**auth(key), "content-type": "application/json"})
        assert r.status_code == 413
    lake.close()


def test_image_pixel_limit_gives_413(env, tmp_path):
    lake = Lake(tmp_path / "px")
    key = create_key(lake, "viewer")["key"]
    app = create_app(lake=lake, limits=ServiceLimits(max_image_pixels=1_000_000))
    with TestClient(app) as c:
        r = c.post("/faces/detect", files={"image": ("big.png", png_bytes((2000, 2000)), "image/png")},
                   headers=auth(key))
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "image_too_large"
        assert "2000x2000" in r.json()["error"]["message"]
    lake.close()


def test_rate_limit_gives_429_with_retry_after(tmp_path):
    lake = Lake(tmp_path / "rl")
    slow = create_key(lake, "viewer", rate_per_s=0.5)["key"]
    other = create_key(lake, "viewer")["key"]
    app = create_app(lake=lake, limits=ServiceLimits(rate_per_s=100, burst=3))
    with TestClient(app) as c:
        codes = [c.get("/me", headers=auth(slow)).status_code for _ in range(4)]
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
        r = c.get("/me", headers=auth(slow))
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == "rate_limited"
        # the limit is per key: another key is unaffected
        assert c.get("/me", headers=auth(other)).status_code == 200
    lake.close()


def test_unexpected_errors_are_json_without_traceback(env):
    r = env.client.get("/collections/alpha/images", params={"where": "{not json"}, headers=auth(env.keys.viewer))
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_input"
    r = env.client.get("/collections/alpha/images", params={"limit": "lots"}, headers=auth(env.keys.viewer))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = env.client.get("/no/such/route", headers=auth(env.keys.viewer))
    assert r.status_code == 404 and "Traceback" not in r.text


# ---------------------------------------------------------------------------------------------- jobs
def test_upload_job_ingests_and_reports(env):
    c, ed = env.client, auth(env.keys.alpha_editor)
    files = [("files", (f"p{i}.png", png_bytes((80 + i, 60), (i * 40, 90, 200)), "image/png")) for i in range(3)]
    files.append(("files", ("broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg")))
    r = c.post("/collections/alpha/jobs", files=files, headers=ed)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("queued", "running") and job["source"] is None  # upload paths stay private
    done = wait_job(c, "alpha", job["id"], env.keys.alpha_editor)
    assert done["status"] == "succeeded", done
    assert done["report"]["ingested"] == 3 and done["report"]["rejected"] == 1
    assert done["done"] == 4 and done["progress"] == 1.0
    imgs = c.get("/collections/alpha/images", headers=ed).json()["images"]
    assert len(imgs) == 3
    thumb = c.get(imgs[0]["thumbnail_url"], headers=ed)
    assert thumb.status_code == 200 and thumb.content[:3] in (b"\xff\xd8\xff", b"RIF", b"\x89PN")
    listed = c.get("/collections/alpha/jobs", headers=ed).json()
    assert listed[0]["id"] == job["id"]


def test_path_job_roots_and_cancel(env):
    c = env.client
    for i in range(4):
        Image.new("RGB", (40, 40), (i * 50, 10, 10)).save(env.src / f"s{i}.png")
    # editors are confined to the ingest roots
    r = c.post("/collections/beta/jobs/from-path", json={"path": "/etc"}, headers=auth(env.keys.editor))
    assert r.status_code == 403 and r.json()["error"]["code"] == "path_not_allowed"
    r = c.post("/collections/beta/jobs/from-path", json={"path": str(env.src / "nope")}, headers=auth(env.keys.editor))
    assert r.status_code == 400
    first = c.post("/collections/beta/jobs/from-path", json={"path": str(env.src)}, headers=auth(env.keys.editor))
    second = c.post("/collections/beta/jobs/from-path", json={"path": str(env.src)}, headers=auth(env.keys.editor))
    assert first.status_code == 202 and second.status_code == 202
    # jobs run one at a time: the second is still queued and cancels at once
    cancelled = c.post(f"/collections/beta/jobs/{second.json()['id']}/cancel", headers=auth(env.keys.editor)).json()
    assert cancelled["status"] == "cancelled"
    done = wait_job(c, "beta", first.json()["id"], env.keys.editor)
    assert done["status"] == "succeeded" and done["report"]["ingested"] == 4
    assert c.get(f"/collections/alpha/jobs/{first.json()['id']}", headers=auth(env.keys.editor)).status_code == 404


# ---------------------------------------------------------------------------------------------- faces
@pytest.fixture(scope="module")
def faces(env, lfw_images: Path):
    from visionlake.faces.gallery import get_pipeline

    bush = sorted((lfw_images / "George_W_Bush").glob("*.jpg"))[:4]
    blair = sorted((lfw_images / "Tony_Blair").glob("*.jpg"))[:3]
    return SimpleNamespace(bush=bush, blair=blair, pipe=get_pipeline())


def _file(p: Path, field: str = "files"):
    return (field, (p.name, p.read_bytes(), "image/jpeg"))


def test_enroll_identify_verify_detect_and_audit(env, faces):
    c, ed, view = env.client, auth(env.keys.editor), auth(env.keys.viewer)
    # consent is required, viewers cannot enroll
    r = c.post("/collections/people/people", data={"person": "George W Bush"}, files=[_file(faces.bush[0])], headers=ed)
    assert r.status_code == 422
    r = c.post("/collections/people/people", data={"person": "G", "consent": "x"}, files=[_file(faces.bush[0])],
               headers=view)
    assert r.status_code == 403
    r = c.post("/collections/people/people", data={"person": "George W Bush", "consent": "signed form 2024-01"},
               files=[_file(faces.bush[0]), _file(faces.bush[1])], headers=ed)
    assert r.status_code == 201, r.text
    assert r.json()["faces_added"] == 2
    r = c.post("/collections/people/people", data={"person": "Tony Blair", "consent": "public figure test"},
               files=[_file(faces.blair[0])], headers=ed)
    assert r.status_code == 201, r.text
    people = c.get("/collections/people/people", headers=view).json()
    assert [p["name"] for p in people] == ["George W Bush", "Tony Blair"]
    assert people[0]["consent"] == "signed form 2024-01"

    r = c.post("/collections/people/faces/identify", files=[_file(faces.bush[2], "image")],
               data={"threshold": "0.9"}, headers=view)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["faces"][0]["identity"] == "George W Bush"
    assert len(out["faces"][0]["box"]) == 4 and out["probe_kept"] is False

    # identify by pre-computed template gives the same answer without a photo
    img = Image.open(faces.blair[1]).convert("RGB")
    vec = faces.pipe.analyse(img)[0][1].tolist()
    r = c.post("/collections/people/faces/identify-embedding", json={"embeddings": [vec], "threshold": 0.9},
               headers=view)
    assert r.status_code == 200, r.text
    assert r.json()["faces"][0]["identity"] == "Tony Blair"
    r = c.post("/collections/people/faces/identify-embedding", json={"embeddings": [[0.5] * 7]}, headers=view)
    assert r.status_code == 400 and "128" in r.json()["error"]["message"]

    r = c.post("/faces/detect", files=[_file(faces.bush[3], "image")], headers=view)
    assert r.status_code == 200 and len(r.json()["faces"]) >= 1
    assert r.json()["width"] == 250
    r = c.post("/faces/verify", files=[_file(faces.bush[2], "a"), _file(faces.bush[3], "b")],
               data={"threshold": "0.9"}, headers=view)
    assert r.status_code == 200 and r.json()["same"] is True
    r = c.post("/faces/verify", files=[_file(faces.bush[2], "a"), _file(faces.blair[2], "b")],
               data={"threshold": "0.9"}, headers=view)
    assert r.status_code == 200 and r.json()["same"] is False

    r = c.post("/collections/people/faces/identify", files=[("image", ("x.jpg", b"garbage", "image/jpeg"))],
               headers=view)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_input"

    log = c.get("/audit", params={"action": "identify"}, headers=auth(env.keys.admin)).json()
    assert len(log) >= 2
    assert {e["actor"] for e in log} == {next(iter({e["actor"] for e in log}))}
    assert log[0]["actor"].startswith("key:look#")
    assert any("person:" in str(e["result_ids"]) for e in log)
    assert all("vector" not in str(e) for e in log)
    verify_log = c.get("/audit", params={"action": "verify"}, headers=auth(env.keys.admin)).json()
    assert len(verify_log) == 2


def test_forget_erases_and_verifies(env, faces):
    c, ed = env.client, auth(env.keys.editor)
    r = c.post("/collections/people/people", data={"person": "Temp Person", "consent": "test"},
               files=[_file(faces.blair[2])], headers=ed)
    assert r.status_code == 201, r.text
    # names never go in URLs: a name where the id belongs is refused, the body carries names
    assert c.delete("/collections/people/people/Temp%20Person", headers=ed).status_code == 422
    assert c.post("/collections/people/people/forget", json={"person": "Nobody Here"}, headers=ed).status_code == 404
    temp = next(p["id"] for p in c.get("/collections/people/people", headers=ed).json() if p["name"] == "Temp Person")
    assert c.delete(f"/collections/people/people/{temp}", headers=auth(env.keys.viewer)).status_code == 403
    assert c.post("/collections/people/people/forget", json={"person": "Temp Person"},
                  headers=auth(env.keys.viewer)).status_code == 403
    r = c.delete(f"/collections/people/people/{temp}", headers=ed)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["ok"] is True and report["removed"]["faces"] == 1 and report["person"] == "Temp Person"
    assert all(ch["ok"] for ch in report["checks"])
    names = [p["name"] for p in c.get("/collections/people/people", headers=ed).json()]
    assert "Temp Person" not in names
    assert c.delete(f"/collections/people/people/{temp}", headers=ed).status_code == 404


def test_groups_rename_merge_split_name_and_retention(env, faces, lfw_images):
    c, admin, ed = env.client, auth(env.keys.admin), auth(env.keys.editor)
    assert c.post("/collections", json={"name": "street", "purpose": "faces"}, headers=admin).status_code == 201
    powell = sorted((lfw_images / "Colin_Powell").glob("*.jpg"))[:3]
    files = [_file(p) for p in powell + faces.blair]
    job = c.post("/collections/street/jobs", files=files, headers=ed).json()
    done = wait_job(c, "street", job["id"], env.keys.editor, timeout=180)
    assert done["status"] == "succeeded", done
    r = c.post("/collections/street/groups/cluster", json={"min_size": 2}, headers=ed)
    assert r.status_code == 200, r.text
    groups = c.get("/collections/street/groups", headers=ed).json()
    assert len(groups) >= 2, groups
    g1, g2 = groups[0]["id"], groups[1]["id"]
    crop = c.get(f"/collections/street/faces/{groups[0]['sample_face_ids'][0]}/crop", headers=ed)
    assert crop.status_code == 200 and crop.content[:2] == b"\xff\xd8"
    assert c.patch(f"/collections/street/groups/{g1}", json={"label": "man in suit"}, headers=ed).json()["label"] \
        == "man in suit"
    assert c.patch("/collections/street/groups/999999", json={"label": "x"}, headers=ed).status_code == 404
    total = groups[0]["faces"] + groups[1]["faces"]
    merged = c.post("/collections/street/groups/merge", json={"group_ids": [g1, g2]}, headers=ed).json()
    assert merged["id"] == g1
    members = c.get(f"/collections/street/groups/{g1}/faces", headers=ed).json()
    assert len(members) == total
    split = c.post(f"/collections/street/groups/{g1}/split", json={"face_ids": [members[0]["id"]]}, headers=ed)
    assert split.status_code == 200 and split.json()["faces_moved"] == 1
    named = c.post(f"/collections/street/groups/{g1}/name", json={"person": "Known Man", "consent": "test"},
                   headers=ed)
    assert named.status_code == 200 and named.json()["faces"] == total - 1
    assert "Known Man" in [p["name"] for p in c.get("/collections/street/people", headers=ed).json()]

    # retention: probe photos kept on request and crops of unmatched faces go; enrolled crops stay
    r = c.post("/collections/street/faces/identify", files=[_file(powell[0], "image")],
               data={"threshold": "0.9", "keep_probe": "true"}, headers=ed)
    assert r.status_code == 200 and r.json()["probe_kept"] is True
    probes = list((env.lake.collection_dir("street") / "probes").rglob("*.*"))
    assert len(probes) == 1
    assert c.get("/admin/retention", headers=admin).json() == {"days": None}
    assert c.post("/admin/retention/purge", headers=admin).status_code == 400
    assert c.put("/admin/retention", json={"days": -1}, headers=admin).status_code == 422
    assert c.put("/admin/retention", json={"days": 0}, headers=admin).json() == {"days": 0}
    report = c.post("/admin/retention/purge", headers=admin).json()
    assert report["probe_photos_deleted"] == 1 and report["face_crops_deleted"] >= 1
    assert not probes[0].exists()
    left = c.get(f"/collections/street/groups/{split.json()['new_groups'][0]}/faces", headers=ed).json()
    assert all(not f["has_crop"] for f in left)
    known = c.get("/collections/street/people", headers=ed).json()
    assert known and known[0]["faces"] == total - 1  # enrolled faces are untouched


# ---------------------------------------------------------------------------------------------- service
def test_metrics_and_ui(env):
    r = env.client.get("/metrics", headers=auth(env.keys.viewer))
    assert r.status_code == 200
    assert 'visionlake_requests_total{method="GET",route="/collections/{collection}/images"' in r.text
    assert "beta" not in r.text  # route templates, never concrete names
    page = env.client.get("/")
    assert page.status_code == 200 and "<title>visionlake</title>" in page.text
    assert "Content-Security-Policy" in page.headers
    assert env.client.get("/static/vendor/plotly.min.js").status_code == 200
    assert env.client.get("/static/app.js").status_code == 200


def test_openapi_documents_errors(env):
    spec = env.client.get("/openapi.json").json()
    op = spec["paths"]["/collections/{collection}/people"]["post"]
    assert {"401", "403", "404", "413", "429"} <= set(op["responses"])
    assert spec["components"]["schemas"]["ErrorBody"]


def test_unexpected_exception_is_500_json(tmp_path):
    lake = Lake(tmp_path / "boom")
    key = create_key(lake, "viewer")["key"]
    app = create_app(lake=lake)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom", headers=auth(key))
        assert r.status_code == 500
        assert r.json()["error"]["code"] == "internal" and "secret" not in r.text
    lake.close()




# ---------------------------------------------------------------------------------------------- fashion
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """The fashion team's tiny two-tower ONNX model (colour words really map to colours)."""
    pytest.importorskip("onnx", reason="building the tiny fashion model needs the onnx package")
    from visionlake.fashion.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_fashion_ingest_search_by_words_photo_and_image_and_tag(env, tiny_model):
    c, admin, ed = env.client, auth(env.keys.admin), auth(env.keys.editor)
    r = c.post("/collections", json={"name": "looks", "purpose": "fashion", "tagger_model": str(tiny_model)},
               headers=admin)
    assert r.status_code == 201, r.text
    colours = {"red": (220, 20, 20), "green": (20, 200, 30), "blue": (20, 30, 220), "yellow": (230, 220, 20)}
    files = [("files", (f"{n}.png", png_bytes((96, 128), rgb), "image/png")) for n, rgb in colours.items()]
    job = c.post("/collections/looks/jobs", files=files, headers=ed).json()
    done = wait_job(c, "looks", job["id"], env.keys.editor, timeout=180)
    assert done["status"] == "succeeded" and done["report"]["ingested"] == 4, done
    images = {i["path"].rsplit("/", 1)[-1]: i["id"] for i in
              c.get("/collections/looks/images", headers=ed).json()["images"]}

    r = c.post("/collections/looks/fashion/search", json={"text": "a photo of a red garment", "top": 4},
               headers=auth(env.keys.viewer))
    assert r.status_code == 200, r.text
    hits = r.json()["results"]
    assert hits[0]["image_id"] == images["red.png"] and len(hits) == 4
    assert hits[0]["score"] >= hits[1]["score"] and hits[0]["thumbnail_url"]

    r = c.post("/collections/looks/fashion/search-image", headers=auth(env.keys.viewer),
               files={"image": ("q.png", png_bytes((50, 50), (30, 40, 210)), "image/png")}, data={"top": "2"})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["image_id"] == images["blue.png"]

    r = c.post("/collections/looks/fashion/search", json={"image_id": images["green.png"], "top": 1},
               headers=auth(env.keys.viewer))
    assert r.json()["results"][0]["image_id"] == images["green.png"]
    r = c.post("/collections/looks/fashion/search", json={"text": "red", "where": {"season": "Winter"}},
               headers=auth(env.keys.viewer))
    assert r.status_code == 200 and r.json()["results"] == []  # no image has that metadata
    r = c.post("/collections/looks/fashion/search", json={"top": 3}, headers=auth(env.keys.viewer))
    assert r.status_code == 400

    r = c.post("/collections/looks/fashion/tag", headers=auth(env.keys.viewer),
               files={"image": ("t.png", png_bytes((80, 80), (220, 20, 20)), "image/png")})
    assert r.status_code == 200, r.text
    assert r.json()["colour_family"] == "red" and r.json()["colour_model"] == "model-free"  # no colour head
    assert r.json()["tags"] and {"attribute", "value", "confidence"} <= set(r.json()["tags"][0])
    assert c.get("/collections/looks/fashion/facets", headers=auth(env.keys.viewer)).status_code == 200
    # isolation holds for fashion too
    r = c.post("/collections/looks/fashion/search", json={"text": "red"}, headers=auth(env.keys.alpha_editor))
    assert r.status_code == 404


# ---------------------------------------------------------------------------------------------- trends
@pytest.fixture(scope="module")
def street_table(tmp_path_factory) -> Path:
    """The first 1,500 looks of StreetStyle-27K's test split (real human labels), as a CSV."""
    from visionlake.config import shared_data_dir

    src = shared_data_dir() / "streetstyle27k" / "streetstyle27ktest.csv"
    if not src.exists():
        pytest.skip(f"StreetStyle-27K not found at {src} (set VISIONLAKE_DATA)")
    lines = src.read_text().splitlines()[:1501]
    out = tmp_path_factory.mktemp("street") / "street.csv"
    out.write_text("\n".join(lines) + "\n")
    return out


def _trend_query(table_id: str, **extra) -> dict:
    return {"table_id": table_id, "time": "created_time", "attributes": ["major_color", "clothing_category"],
            "id_column": "id", "by": "month", **extra}


def test_trends_from_an_uploaded_table(env, street_table):
    c, viewer = env.client, auth(env.keys.viewer)
    r = c.post("/trends/tables", files={"file": ("street.csv", street_table.read_bytes(), "text/csv")}, headers=viewer)
    assert r.status_code == 201, r.text
    table = r.json()
    tid = table["table_id"]
    assert table["rows"] == 1500 and "major_color" in table["columns"]
    assert table["suggested_time"] == "created_time" and table["suggested_id_column"] == "id"
    assert {"major_color", "clothing_category"} <= set(table["suggested_attributes"])
    assert "url" not in table["suggested_attributes"]  # an id-like column is not a label
    assert tid in [t["table_id"] for t in c.get("/trends/tables", headers=viewer).json()]
    assert c.get(f"/trends/tables/{tid}", headers=viewer).json()["rows"] == 1500

    r = c.post("/trends/series", json=_trend_query(tid), headers=viewer)
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["series"] > 10 and s["periods"] >= 12 and not s["truncated"]
    rows = s["rows"]
    for row in rows:
        if row["y"] is not None:
            assert row["lo"] <= row["y"] <= row["hi"] and 0 <= row["count"] <= row["n"]
    # one colour per look: the colour shares of a month add up to 100 %
    month = rows[0]["ds"]
    total = sum(x["y"] for x in rows if x["attribute"] == "major_color" and x["ds"] == month and x["y"] is not None)
    assert total == pytest.approx(1.0)
    few = c.post("/trends/series", json=_trend_query(tid, top=2), headers=viewer).json()
    assert len({x["unique_id"] for x in few["rows"]}) == 2

    r = c.post("/trends/signals", json=_trend_query(tid, top=50), headers=viewer)
    assert r.status_code == 200, r.text
    sig = r.json()
    assert sum(sig["labels"].values()) == s["series"]
    assert all(x["label"] in ("emerging", "rising") for x in sig["rising"])
    assert all(x["label"] in ("declining", "fading") for x in sig["falling"])
    assert all(0 <= (x["trend_p"] if x["trend_p"] is not None else 0) <= 1 for x in sig["signals"])
    assert sig["lift"] and all(x["lift"] > 0 for x in sig["lift"])

    ids = ["major_color=Black", "clothing_category=Dress"]
    r = c.post("/trends/forecast", json=_trend_query(tid, horizon=4, ids=ids, model="seasonal_naive"), headers=viewer)
    assert r.status_code == 200, r.text
    fc = r.json()
    assert len(fc["rows"]) == 8 and {x["unique_id"] for x in fc["rows"]} == set(ids)
    for x in fc["rows"]:
        assert 0 <= x["lo_95"] <= x["lo_80"] <= x["mean"] <= x["hi_80"] <= x["hi_95"] <= 1
    assert fc["rows"][0]["ds"] > max(x["ds"] for x in rows)  # the forecast starts after the history

    pdf = c.post("/trends/report", json=_trend_query(tid, format="pdf", horizon=3), headers=viewer)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and "attachment" in pdf.headers["content-disposition"]
    html = c.post("/trends/report", json=_trend_query(tid, format="html", horizon=3), headers=viewer)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert b"Trends: street.csv" in html.content and b"Plotly.newPlot" in html.content
    assert not re.search(rb"<script[^>]+src=[\"']https?:", html.content)  # self-contained: no CDN


def test_trend_tables_are_private_to_their_key_and_errors_are_clear(env, street_table):
    c = env.client
    mine = c.post("/trends/tables", files={"file": ("s.csv", street_table.read_bytes(), "text/csv")},
                  headers=auth(env.keys.alpha_editor)).json()["table_id"]
    # another scoped key cannot use or even see it; an unscoped key can
    other = create_key(env.lake, "viewer", ["beta"], name="beta-view")["key"]
    assert c.get(f"/trends/tables/{mine}", headers=auth(other)).status_code == 404
    assert mine not in [t["table_id"] for t in c.get("/trends/tables", headers=auth(other)).json()]
    assert c.post("/trends/series", json=_trend_query(mine), headers=auth(other)).status_code == 404
    assert c.post("/trends/series", json=_trend_query(mine), headers=auth(env.keys.admin)).status_code == 200

    v = auth(env.keys.viewer)
    assert c.post("/trends/series", json={"attributes": ["a"]}, headers=v).status_code == 400  # no source
    both = c.post("/trends/series", json={**_trend_query(mine), "collection": "alpha"}, headers=v)
    assert both.status_code == 400 and "exactly one" in both.json()["error"]["message"]
    bad = c.post("/trends/series", json={**_trend_query(mine), "time": "nope"}, headers=v)
    assert bad.status_code == 400 and "created_time" in bad.json()["error"]["message"]
    assert c.post("/trends/series", json=_trend_query("0" * 24), headers=v).status_code == 404
    junk = c.post("/trends/tables", files={"file": ("x.csv", b"", "text/csv")}, headers=v)
    assert junk.status_code == 400
    assert c.post("/trends/series", json=_trend_query(mine, by="decade"), headers=v).status_code == 422

    # deleting: only a key that can see the table; afterwards nothing of it is left or usable
    from visionlake.service.retention import purge, trend_tables_dir

    assert c.delete(f"/trends/tables/{mine}", headers=auth(other)).status_code == 404
    assert c.delete(f"/trends/tables/{mine}", headers=auth(env.keys.alpha_editor)).status_code == 204
    assert not [p for p in trend_tables_dir(env.lake).iterdir() if p.stem == mine]
    assert c.post("/trends/series", json=_trend_query(mine), headers=auth(env.keys.admin)).status_code == 404
    assert c.delete(f"/trends/tables/{mine}", headers=auth(env.keys.admin)).status_code == 404

    # retention: a table younger than the setting stays, an older one goes with its data file
    old = c.post("/trends/tables", files={"file": ("o.csv", street_table.read_bytes(), "text/csv")},
                 headers=v).json()["table_id"]
    assert purge(env.lake, 1)["trend_tables_deleted"] == 0
    facts = trend_tables_dir(env.lake) / f"{old}.json"
    meta = json.loads(facts.read_text())
    facts.write_text(json.dumps({**meta, "uploaded_at": "2020-01-01T00:00:00+00:00"}))
    report = purge(env.lake, 1)
    assert report["trend_tables_deleted"] == 1 and report["bytes_freed"] >= len(street_table.read_bytes())
    assert not [p for p in trend_tables_dir(env.lake).iterdir() if p.stem == old]
    assert c.get(f"/trends/tables/{old}", headers=v).status_code == 404


def test_trends_from_a_server_path_need_an_ingest_root(env, street_table):
    import shutil

    c = env.client
    inside = env.src / "street.csv"
    shutil.copy(street_table, inside)
    q = {k: v for k, v in _trend_query("x").items() if k != "table_id"}
    r = c.post("/trends/signals", json={**q, "path": str(inside)}, headers=auth(env.keys.editor))
    assert r.status_code == 200, r.text
    r = c.post("/trends/signals", json={**q, "path": str(street_table)}, headers=auth(env.keys.editor))
    assert r.status_code == 403 and r.json()["error"]["code"] == "path_not_allowed"
    r = c.post("/trends/signals", json={**q, "path": str(street_table)}, headers=auth(env.keys.admin))
    assert r.status_code == 200


def test_trends_from_a_collection_of_fashion_tags(env):
    """Tags stored by the fashion analysers, read through the lake; scoped like every collection."""
    from sqlalchemy import insert

    from visionlake.catalog.models import Image
    from visionlake.fashion.models import FashionTag

    lake = env.lake
    col = lake.create_collection("tagged", "fashion")
    rows, tags = [], []
    for i in range(240):
        year, month = 2020 + i // 120, 1 + (i % 120) // 10
        rows.append({"collection_id": col.id, "sha256": f"{i:064x}", "path": f"t/{i}.jpg",
                     "meta": {"date": f"{year}-{month:02d}-15", "city": "Paris" if i % 2 else "Oslo"}})
    with lake.session() as s:
        s.execute(insert(Image), rows)
        ids = [r.id for r in s.query(Image).filter(Image.collection_id == col.id).order_by(Image.id)]
        for k, image_id in enumerate(ids):
            # black rises through the two years: from 10 % of looks to 90 %
            black = (k % 10) < 1 + (8 * k) // len(ids)
            tags.append({"image_id": image_id, "attribute": "colour", "value": "black" if black else "white",
                         "confidence": 0.9, "region": "whole", "source": "head"})
    with lake.session() as s:
        s.execute(insert(FashionTag), tags)
    c = env.client
    r = c.post("/trends/signals", json={"collection": "tagged", "by": "month", "min_support": 5},
               headers=auth(env.keys.viewer))
    assert r.status_code == 200, r.text
    rising = [x["unique_id"] for x in r.json()["rising"]]
    falling = [x["unique_id"] for x in r.json()["falling"]]
    assert rising == ["colour=black"] and falling == ["colour=white"]
    seg = c.post("/trends/series", json={"collection": "tagged", "segments": ["city"], "min_support": 5},
                 headers=auth(env.keys.viewer)).json()
    assert {x["segments"]["city"] for x in seg["rows"]} == {"Paris", "Oslo"}
    # a key for another collection learns nothing about this one
    hidden = c.post("/trends/series", json={"collection": "tagged"}, headers=auth(env.keys.alpha_editor))
    missing = c.post("/trends/series", json={"collection": "no-such"}, headers=auth(env.keys.alpha_editor))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"] == missing.json()["error"]["message"].replace("no-such", "tagged")
    empty = c.post("/trends/series", json={"collection": "alpha"}, headers=auth(env.keys.viewer))
    assert empty.status_code == 400 and "no fashion tags" in empty.json()["error"]["message"]
