"""What the service's speed-ups must not break: the audit log, erasure, caches and SQLite locking."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from service_helpers import auth
from sqlalchemy import insert

from visionlake.lake import Lake
from visionlake.service.app import create_app
from visionlake.service.auth import create_key, revoke_key
from visionlake.service.limits import QueryRunner, ServiceLimits


@pytest.fixture()
def gallery(tmp_path):
    """A faces collection of 40 synthetic templates of 10 people, built through the faces tables."""
    from visionlake.catalog.models import Image
    from visionlake.faces.models import Face, Person
    from visionlake.faces.sync import face_index, index_meta, seal

    lake = Lake(tmp_path / "lake")
    col = lake.create_collection("g", "faces")
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((10, 32)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    owner = np.arange(40) % 10
    vecs = centres[owner] + 0.05 * rng.standard_normal((40, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    with lake.session() as s:
        s.execute(insert(Person), [{"id": i + 1, "collection_id": col.id, "name": f"Person {i}",
                                    "consent": "test"} for i in range(10)])
        s.execute(insert(Image), [{"id": 1, "collection_id": col.id, "sha256": "0" * 64, "path": "x",
                                   "meta": {"source": "test"}}])
        s.execute(insert(Face), [{"id": i + 1, "collection_id": col.id, "image_id": 1, "box": [0, 0, 9, 9],
                                  "landmarks": [], "score": 1.0, "quality": 1.0, "pack": "test-32",
                                  "embedding": seal(lake.cipher, vecs[i]), "person_id": int(owner[i]) + 1}
                                 for i in range(40)])
    index = face_index(lake, "g", 32)
    index.add(np.arange(1, 41), vecs, [index_meta(int(o) + 1) for o in owner])
    index.save()
    key = create_key(lake, "admin", name="t")["key"]
    app = create_app(lake=lake, limits=ServiceLimits(rate_per_s=1e5, burst=1e5), job_workers=0)
    with TestClient(app) as client:
        yield client, lake, key, centres
    lake.close()


def _identify(client, key, vec) -> dict:
    r = client.post("/collections/g/faces/identify-embedding", headers=auth(key),
                    json={"embeddings": [vec.tolist()], "threshold": 0.5})
    assert r.status_code == 200, r.text
    return r.json()


def test_every_identify_call_is_in_the_audit_log_at_once(gallery):
    client, _lake, key, centres = gallery
    for i in range(25):
        assert _identify(client, key, centres[i % 10])["faces"][0]["identity"] == f"Person {i % 10}"
    log = client.get("/audit?action=identify&limit=1000", headers=auth(key)).json()
    assert len(log) == 25  # buffered writes are flushed before the log is read
    assert log[0]["result_ids"] == ["person:5"] and log[0]["actor"].startswith("key:t#")
    times = [e["at"] for e in log]
    assert times == sorted(times, reverse=True)  # each entry keeps the time of its call


def test_the_hot_routes_check_keys_exactly_like_viewer_routes(gallery):
    """identify-embedding and fashion search read the key schemes inside one dependency (fewer calls
    per request): the same answers for every way of presenting a key, and the same /docs security."""
    client, lake, key, centres = gallery
    body = {"embeddings": [centres[0].tolist()], "threshold": 0.5}  # (rate limits: test_api)
    path = "/collections/g/faces/identify-embedding"
    assert client.post(path, json=body, headers={"X-API-Key": key}).status_code == 200
    assert client.post(path, json=body, headers={"Authorization": f"bearer {key}"}).status_code == 200
    for headers in ({}, {"Authorization": f"Basic {key}"}, {"Authorization": "Bearer"},
                    {"X-API-Key": key + "x"}, {"Authorization": "Bearer nope"}):
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", (headers, r.text)
    revoked = create_key(lake, "viewer", name="gone")
    revoke_key(lake, revoked["id"])
    assert client.post(path, json=body, headers=auth(revoked["key"])).status_code == 401
    paths = client.get("/openapi.json").json()["paths"]
    viewer_route = paths["/collections/{collection}/fashion/search-image"]["post"]["security"]
    assert viewer_route  # a Viewer route: the reference
    for hot in (path, "/collections/{collection}/fashion/search"):
        hot = hot.replace("/g/", "/{collection}/")
        assert paths[hot]["post"]["security"] == viewer_route


def test_forget_leaves_no_queued_trace_of_the_person(gallery):
    client, _lake, key, centres = gallery
    st = client.app.state.service
    st.audit.every_s = 3600  # keep the entries queued: forget itself must flush them before scrubbing
    for _ in range(3):
        _identify(client, key, centres[2])
    assert st.audit.pending == 3
    r = client.post("/collections/g/people/forget", json={"person": "Person 2"}, headers=auth(key))
    assert r.status_code == 200 and r.json()["ok"], r.json()
    log = client.get("/audit?action=identify", headers=auth(key)).json()
    assert len(log) == 3 and all("person:3" not in e["result_ids"] for e in log)
    assert all(e["result_ids"] == ["erased:1"] for e in log)
    # and the forgotten person is no longer identified, through the caches
    assert _identify(client, key, centres[2])["faces"][0]["identity"] == "unknown"


def test_entries_written_after_an_erasure_elsewhere_are_scrubbed(gallery):
    """Another process forgets a person while this one still has an entry naming them queued."""
    from visionlake.faces.erasure import forget

    client, lake, key, centres = gallery
    st = client.app.state.service
    st.audit.every_s = 3600
    _identify(client, key, centres[4])
    assert st.audit.pending == 1
    elsewhere = Lake(lake.root, create=False)  # the person disappears under the buffer (a whole erasure:
    try:  # a bare DELETE of the person row left faces the index still labelled, which `check` finds)
        assert forget(elsewhere, "g", person_id=5, scan_files=False)["ok"]
    finally:
        elsewhere.close()
    st.audit.flush()
    entry = client.get("/audit?action=identify", headers=auth(key)).json()[0]
    assert entry["result_ids"] == ["erased:1"]


def test_a_probe_kept_by_a_queued_entry_of_a_person_erased_elsewhere_is_deleted(gallery):
    """The erasure elsewhere could not see the queued entry, so it could not delete the probe it kept."""
    from visionlake.faces.erasure import forget

    client, lake, key, _centres = gallery
    st = client.app.state.service
    st.audit.every_s = 3600
    rel = "collections/g/probes/ab/" + "ab" * 32 + ".png"
    lake.write_file(rel, b"probe photo bytes")
    st.audit.record("identify", "g", ["person:6", f"probe:{rel}"], "1 face(s), 1 identified, probe kept", None)
    elsewhere = Lake(lake.root, create=False)
    try:
        assert forget(elsewhere, "g", person_id=6, scan_files=False)["ok"]
    finally:
        elsewhere.close()
    st.audit.flush()
    entry = client.get("/audit?action=identify", headers=auth(key)).json()[0]
    assert entry["result_ids"] == ["erased:2"] and not (lake.root / rel).exists()


def test_an_index_written_by_another_process_is_reloaded(gallery, tmp_path):
    """Enrolment through the CLI or another worker changes the index file; the server notices."""
    client, lake, key, centres = gallery
    _identify(client, key, centres[0])
    code = f"""
import numpy as np
from sqlalchemy import insert
from visionlake.lake import Lake
from visionlake.faces.models import Face, Person
from visionlake.faces.sync import face_index, index_meta, seal
lake = Lake({str(lake.root)!r})
v = np.zeros(32, dtype=np.float32); v[0] = 1.0
with lake.session() as s:
    s.execute(insert(Person), [{{"id": 99, "collection_id": 1, "name": "Newcomer", "consent": "t"}}])
    s.execute(insert(Face), [{{"id": 99, "collection_id": 1, "image_id": 1, "box": [0, 0, 9, 9], "landmarks": [],
                               "pack": "test-32", "embedding": seal(lake.cipher, v), "person_id": 99}}])
ix = face_index(lake, "g", 32)
ix.add(np.array([99]), v[None, :], [index_meta(99)])
ix.save()
"""
    time.sleep(0.01)  # a different modification time on coarse clocks
    subprocess.run([sys.executable, "-c", code], check=True)
    probe = np.zeros(32, dtype=np.float32)
    probe[0] = 1.0
    assert _identify(client, key, probe)["faces"][0]["identity"] == "Newcomer"


def test_revoking_through_the_server_applies_to_the_next_request(gallery):
    client, lake, key, _c = gallery
    other = create_key(lake, "viewer", name="short-lived")
    assert client.get("/me", headers=auth(other["key"])).status_code == 200  # now cached
    assert client.delete(f"/admin/keys/{other['id']}", headers=auth(key)).status_code == 200
    assert client.get("/me", headers=auth(other["key"])).status_code == 401
    # revoked elsewhere (the CLI): effective once the short cache time has passed
    third = create_key(lake, "viewer", name="cli-revoked")
    assert client.get("/me", headers=auth(third["key"])).status_code == 200
    revoke_key(lake, third["id"])
    client.app.state.service.verifier.ttl_s = 0.0
    assert client.get("/me", headers=auth(third["key"])).status_code == 401


def test_file_scan_keeps_this_process_sqlite_locks(tmp_path):
    """Closing any descriptor of a SQLite file drops the process's POSIX locks on it; the erasure scan
    must therefore not open the live catalog in-process."""
    from visionlake.faces.gallery import name_pattern, scan_lake_files

    db = tmp_path / "catalog.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.execute("INSERT INTO t VALUES ('Ada Lovelace')")
    conn.execute("BEGIN EXCLUSIVE")  # holds the file's locks until COMMIT
    try:
        hits, scanned = scan_lake_files(tmp_path, {"name": name_pattern("Ada Lovelace")})
        assert scanned >= 1 and "catalog.sqlite: name" in hits  # the raw bytes were read
        probe = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=0)\n"
                 "try:\n    c.execute('BEGIN IMMEDIATE'); print('acquired')\n"
                 "except sqlite3.OperationalError as e:\n    print(e)")
        out = subprocess.run([sys.executable, "-c", probe, str(db)], capture_output=True, text=True).stdout
        assert "locked" in out, out  # our exclusive lock survived the scan
    finally:
        conn.execute("COMMIT")
        conn.close()


def test_query_runner_moves_slow_queries_to_threads():
    import asyncio
    import threading

    runner = QueryRunner(inline_below_s=0.002)
    main = threading.get_ident()
    where: list[bool] = []

    def fast() -> None:
        where.append(threading.get_ident() == main)

    def slow() -> None:
        where.append(threading.get_ident() == main)
        t0 = time.thread_time()
        while time.thread_time() - t0 < 0.01:
            pass

    async def go() -> None:
        for _ in range(3):
            await runner.run("fast", fast, timeout=5)
        await runner.run("fast", fast, timeout=5, warm=False)
        for _ in range(3):
            await runner.run("slow", slow, timeout=5)

    asyncio.run(go())
    # fast: first run in a thread, then inline, but not when the caller says it is cold
    assert where[:4] == [False, True, True, False]
    assert where[4:] == [False, False, False]  # slow: never on the event loop


def test_a_cold_run_does_not_count_as_the_query_being_slow():
    """A cold run times the loading (an index, a gallery's names): counted, it kept a 2 ms query in
    threads for ~20 runs after start."""
    import asyncio
    import threading

    runner = QueryRunner(inline_below_s=0.002)
    main = threading.get_ident()
    where: list[bool] = []

    def load_then_query(cold: bool) -> None:
        where.append(threading.get_ident() == main)
        t0 = time.thread_time()
        while cold and time.thread_time() - t0 < 0.05:  # the load
            pass

    async def go() -> None:
        await runner.run("q", load_then_query, True, timeout=5, warm=False)
        for _ in range(3):
            await runner.run("q", load_then_query, False, timeout=5)

    try:
        asyncio.run(go())
    finally:
        runner.close()
    assert where == [False, False, True, True]  # one warm run measured off the loop, then inline
    assert runner.estimate("q") < 0.002


def test_queries_off_the_loop_run_one_at_a_time_in_arrival_order():
    """The query executor is one FIFO queue (not 40 threads sharing the GIL): each query waits only
    for those that arrived before it."""
    import asyncio
    import threading

    runner = QueryRunner(threads=1)
    events: list[tuple[str, int, int]] = []

    def query(n: int) -> int:
        events.append(("start", n, threading.get_ident()))
        time.sleep(0.02)
        events.append(("end", n, threading.get_ident()))
        return n

    async def go() -> list[int]:
        # cold queries (warm=False) never run inline: all five go to the executor at once
        return await asyncio.gather(*(runner.run("q", query, n, timeout=10, warm=False) for n in range(5)))

    try:
        assert asyncio.run(go()) == [0, 1, 2, 3, 4]
    finally:
        runner.close()
    assert [(e, n) for e, n, _ in events] == [(e, n) for n in range(5) for e in ("start", "end")]
    assert len({t for *_, t in events}) == 1 and threading.get_ident() not in {t for *_, t in events}


def test_a_query_still_queued_at_its_timeout_answers_503_and_never_runs():
    import asyncio

    from visionlake.service.errors import ApiError

    runner = QueryRunner(threads=1)
    ran: list[str] = []

    def blocker() -> None:
        time.sleep(0.4)
        ran.append("blocker")

    def queued() -> None:
        ran.append("queued")

    async def go() -> None:
        first = asyncio.ensure_future(runner.run("b", blocker, timeout=10, warm=False))
        await asyncio.sleep(0.05)  # the blocker holds the only thread
        with pytest.raises(ApiError) as err:
            await runner.run("q", queued, timeout=0.1, warm=False)
        assert err.value.status == 503 and err.value.code == "timeout"
        await first

    try:
        asyncio.run(go())
    finally:
        runner.close()
    assert ran == ["blocker"]  # dropped from the queue, not run late with its answer thrown away


def test_pool_threads_search_with_the_service_thread_count():
    """OpenMP keeps its team size per thread: setting it in the main thread only left every pool
    thread at all cores, and a single-query FAISS search there cost ~4x the CPU (spinning teams)."""
    import asyncio

    faiss = pytest.importorskip("faiss")  # an optional backend, not one of our modules
    from visionlake.service.limits import configure_search_threads, run_blocking

    async def in_pool() -> int:
        return await run_blocking(faiss.omp_get_max_threads, timeout=10)

    runner = QueryRunner()

    async def in_query_executor() -> int:
        return await runner.run("omp", faiss.omp_get_max_threads, timeout=10, warm=False)

    try:
        for n in (3, 1):  # 3: differs from the default on 1- and 2-core machines too
            configure_search_threads(n)
            assert faiss.omp_get_max_threads() == n
            assert asyncio.run(in_pool()) == n
            assert asyncio.run(in_query_executor()) == n
    finally:
        configure_search_threads(1)
        runner.close()


def test_no_request_path_can_reach_routes_of_two_routers(tmp_path):
    """The app matches the hot routers first (a cost choice): that is only safe while no path fits
    routes of two routers, so the order can never change which route answers."""
    app = create_app(tmp_path / "lake", job_workers=0)
    routers = [r.original_router for r in app.router.routes if hasattr(r, "original_router")]
    assert len(routers) >= 7

    def overlap(a: str, b: str) -> bool:
        sa, sb = a.strip("/").split("/"), b.strip("/").split("/")
        assert not any(":path" in s for s in sa + sb)  # one segment per parameter
        return len(sa) == len(sb) and all(x == y or x.startswith("{") or y.startswith("{")
                                          for x, y in zip(sa, sb, strict=True))

    assert overlap("/collections/{c}/people/{p}", "/collections/x/people/forget")  # the check itself works
    for i, mine in enumerate(routers):
        for j, other in enumerate(routers):
            if i < j:
                clash = [(r.path, o.path) for r in mine.routes for o in other.routes if overlap(r.path, o.path)]
                assert not clash, clash


def test_a_serving_process_takes_what_a_cold_query_loaded_out_of_the_collectors_scans():
    """Full garbage collections walked every object of the loaded indexes (~190 ms with the event
    loop stopped, several per minute under load); a server freezes what stays after a cold query."""
    import asyncio
    import gc

    from visionlake.service import heap

    runner = QueryRunner()
    kept: list[list[dict[str, list[int]]]] = []

    def load() -> int:  # a query that loads long-lived data (an index's metadata, say)
        kept.append([{"person_ids": [i]} for i in range(1000)])
        return len(kept[-1])

    def scanned(obj: object) -> bool:  # frozen objects are in no generation the collector walks
        return any(o is obj for o in gc.get_objects())

    gc.unfreeze()
    try:
        assert not heap.settle() and gc.get_freeze_count() == 0  # not a server: the collector as usual
        heap.enable()
        assert asyncio.run(runner.run("q", load, timeout=10, warm=True)) == 1000
        assert scanned(kept[0][0])  # a warm query settles nothing
        assert asyncio.run(runner.run("q", load, timeout=10, warm=False)) == 1000
        assert gc.get_freeze_count() > 0
        assert not scanned(kept[0][0]) and not scanned(kept[1][-1])  # out of every later scan...
        gc.collect()
        assert kept[1][-1] == {"person_ids": [999]}  # ...and still alive
    finally:
        heap.enable(False)
        gc.unfreeze()


# ------------------------------------------------------------------ hot routes answer pre-serialised JSON
_IDENTIFY_OUTS = [
    {"collection": "g", "threshold": 0.5, "probe_kept": False, "warning": "not in the model: dropped",
     "faces": [{"identity": "Ann", "best_score": np.float32(0.81234),
                "matches": [{"person": "Ann", "person_id": np.int64(3), "score": np.float32(0.8123), "face_id": 7},
                            {"person": "Bö", "person_id": 4, "score": 0.61, "face_id": np.int64(9)}]},
               {"identity": "unknown", "best_score": None, "matches": [], "warning": "face is small",
                "box": [np.int64(1), 2, 3, 4], "quality": np.float32(0.5)}]},
    {"collection": "g", "threshold": 0.0001, "faces": [], "probe_kept": False},
]


@pytest.mark.parametrize("out", _IDENTIFY_OUTS)
def test_identify_answer_is_byte_for_byte_what_the_response_model_writes(out):
    from pydantic_core import to_json

    from visionlake.service.routes.faces import IdentifyOut, identify_out

    assert to_json(identify_out(out)) == IdentifyOut.model_validate(out).model_dump_json().encode()


def test_search_answer_is_byte_for_byte_what_the_response_model_writes():
    from pydantic_core import to_json

    from visionlake.fashion.search import SearchResult
    from visionlake.service.routes.fashion import SearchOut, _hits, search_out

    results = [SearchResult(np.int64(5), np.float32(0.91234), "a.jpg", "/lake/t.jpg",
                            {"season": "Été", "year": 2012, "stored": "x", "tags": ["a", 1.5], "n": None}),
               SearchResult(7, 0.25, "b.jpg", None, {})]
    for res in (results, []):
        generic = SearchOut(collection="looks", query="red", results=_hits("looks", res)).model_dump_json()
        assert to_json(search_out("looks", "red", res)) == generic.encode()


def test_hot_routes_send_the_models_json_and_still_declare_the_models(gallery):
    from visionlake.service.routes.faces import IdentifyOut

    client, _lake, key, centres = gallery
    for body in ({"embeddings": [centres[0].tolist(), centres[1].tolist()], "threshold": 0.5, "top": 3},
                 {"embeddings": [centres[2].tolist()], "threshold": 0.999}):
        r = client.post("/collections/g/faces/identify-embedding", headers=auth(key), json=body)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.content == IdentifyOut.model_validate(r.json()).model_dump_json().encode()
    assert r.json()["faces"][0] == {"box": None, "quality": None, "identity": "unknown",
                                    "best_score": r.json()["faces"][0]["best_score"], "matches": [],
                                    "warning": None}
    # request validation answers are unchanged (FastAPI's own body validation still runs)
    bad = client.post("/collections/g/faces/identify-embedding", headers=auth(key), json={"embeddings": []})
    assert bad.status_code == 422
    paths = client.get("/openapi.json").json()["paths"]
    for path, model in (("/collections/{collection}/faces/identify-embedding", "IdentifyOut"),
                        ("/collections/{collection}/fashion/search", "SearchOut")):
        ok = paths[path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{model}"}


def test_search_hit_rows_in_driver_sql_equal_the_core_read(tmp_path):
    from visionlake.catalog.models import Image
    from visionlake.fashion.search import _HIT_ROWS, hit_rows

    lake = Lake(tmp_path / "lake")
    col = lake.create_collection("looks", "fashion")
    odd = "caf\udce9.jpg"  # a file name that is not UTF-8 (stored as bytes)
    from PIL import Image as PILImage

    (lake.root / "t").mkdir()
    PILImage.new("RGB", (8, 8)).save(lake.root / "t" / "a.jpg")  # the lake check reads thumbnails
    with lake.session() as s:
        s.execute(insert(Image), [
            {"id": 10, "collection_id": col.id, "sha256": "a" * 64, "path": odd, "thumbnail": "t/a.jpg",
             "meta": {"season": "Été", "year": 2012, "tags": ["x"]}},
            {"id": 11, "collection_id": col.id, "sha256": "b" * 64, "path": "b.jpg", "meta": None}])
    with lake.engine.connect() as conn:
        core = {r.id: (r.path, r.thumbnail, r.meta) for r in conn.execute(_HIT_ROWS, {"ids": [10, 11, 99]})}
    assert hit_rows(lake, [10, 11, 99]) == core
    assert core[10] == (odd, "t/a.jpg", {"season": "Été", "year": 2012, "tags": ["x"]})
    assert hit_rows(lake, []) == {}
    lake.close()


def test_a_stale_key_is_checked_once_for_all_the_requests_that_present_it_meanwhile() -> None:
    """When a key's 2 s trust runs out, 50 requests in flight must not each re-read its row (a herd of
    pool threads that stalled the service every 2 s); they share one check, and the next wave checks again."""
    import asyncio
    import threading
    import time as _time
    from types import SimpleNamespace

    from visionlake.service.deps import _check_key

    calls: list[str] = []
    gate = threading.Event()

    class Verifier:
        def verify(self, presented: str) -> str | None:
            calls.append(presented)
            gate.wait(5)
            _time.sleep(0.01)
            return None if presented == "bad" else f"principal-of-{presented}"

    st = SimpleNamespace(verifier=Verifier(), key_checks={})

    async def wave() -> list[str | None]:
        gate.clear()
        tasks = [asyncio.ensure_future(_check_key(st, "vl_key_a")) for _ in range(50)]
        tasks += [asyncio.ensure_future(_check_key(st, "bad")) for _ in range(5)]
        await asyncio.sleep(0.05)
        tasks[0].cancel()  # a client that went away does not cancel the check the others wait for
        gate.set()
        out = await asyncio.gather(*tasks[1:])
        assert tasks[0].cancelled()
        return out

    out = asyncio.run(wave())
    assert sorted(calls) == ["bad", "vl_key_a"]
    assert out[:49] == ["principal-of-vl_key_a"] * 49 and out[49:] == [None] * 5
    assert st.key_checks == {}
    asyncio.run(wave())
    assert len(calls) == 4  # a later stale moment checks again: nothing is kept beyond the check
