"""Viewer-level resource limits and small hardening items (issue 12, items 10 and 12; issue 14, item 9).

* a 132 KB Parquet declaring 20 million rows is refused in well under a second, before it is read;
* connections that never finish their request head, or stall in a body, are closed (raw sockets to
  127.0.0.1, every wait bounded);
* ``where`` keys with NUL or ``"]`` are a 400, not a 500;
* security headers are on every response, static files and errors included;
* job errors shown to API clients carry no server paths or SQL;
* ``serve`` on a busy port says so in one line and exits 1 (not 3, "not found").
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from service_helpers import auth

from visionlake.service.app import create_app
from visionlake.service.auth import create_key


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from visionlake.lake import Lake

    lake = Lake(tmp_path_factory.mktemp("hardening") / "lake")
    lake.create_collection("plain", "plain")
    lake.create_collection("looks", "fashion")
    key = create_key(lake, "viewer", name="viewer")["key"]
    with TestClient(create_app(lake=lake, job_workers=0)) as c:
        c.key = key  # type: ignore[attr-defined]
        yield c
    lake.close()


def _bomb_parquet(rows: int = 20_000_000) -> bytes:
    """A tiny file that decompresses into ``rows`` rows (one constant column, run-length encoded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    table = pa.table({"x": pa.array(__import__("numpy").zeros(rows, dtype="int8"))})
    pq.write_table(table, buf, compression="zstd", row_group_size=rows)
    return buf.getvalue()


def test_parquet_claiming_20_million_rows_is_refused_before_reading(client):
    data = _bomb_parquet()
    assert len(data) < 200_000  # the attack: a small upload
    t0 = time.monotonic()
    r = client.post("/trends/tables", headers=auth(client.key),
                    files={"file": ("looks.parquet", data, "application/octet-stream")})
    took = time.monotonic() - t0
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "table_too_large"
    assert "20,000,000 rows" in r.json()["error"]["message"]
    assert took < 3.0, f"refusing took {took:.1f} s"
    listed = client.get("/trends/tables", headers=auth(client.key)).json()
    assert not listed  # nothing of it is kept


def test_csv_with_too_many_rows_is_refused(lake):
    from visionlake.service.limits import ServiceLimits

    lake.create_collection("plain", "plain")
    key = create_key(lake, "viewer", name="v")["key"]
    limits = ServiceLimits(max_table_rows=1000)
    with TestClient(create_app(lake=lake, job_workers=0, limits=limits)) as c:
        ok = "time,colour\n" + "".join(f"2020-01-{1 + i % 28:02d},red\n" for i in range(500))
        assert c.post("/trends/tables", headers=auth(key), files={"file": ("ok.csv", ok.encode())}).status_code == 201
        big = "time,colour\n" + "2020-01-01,red\n" * 5000
        r = c.post("/trends/tables", headers=auth(key), files={"file": ("big.csv", big.encode())})
        assert r.status_code == 413 and "5,000 rows" in r.json()["error"]["message"]


@pytest.mark.parametrize("key", ["a\x00b", 'season"]', '"]', "x\\y"])
def test_where_keys_that_break_json_paths_are_bad_input(client, key):
    import json

    r = client.get("/collections/plain/images", headers=auth(client.key), params={"where": json.dumps({key: "1"})})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_input"
    r = client.post("/collections/looks/fashion/search", headers=auth(client.key),
                    json={"image_id": 1, "where": {key: "1"}})
    assert r.status_code == 400, r.text


def test_ordinary_where_keys_still_work(client):
    r = client.get("/collections/plain/images", headers=auth(client.key),
                   params={"where": '{"season]": "Summer", "a.b": "1", "année": "2012"}'})
    assert r.status_code == 200 and r.json()["images"] == []


@pytest.mark.parametrize("path, status", [("/", 200), ("/static/index.html", 200), ("/static/app.js", 200),
                                          ("/favicon.ico", 200), ("/docs", 200), ("/redoc", 200),
                                          ("/static/docs/swagger-ui-bundle.js", 200), ("/collections", 401),
                                          ("/static/nope.js", 404)])
def test_security_headers_on_every_response(client, path, status):
    r = client.get(path)
    assert r.status_code == status
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_docs_pages_use_only_local_assets(client):
    for path in ("/docs", "/redoc"):
        html = client.get(path).text
        assert "cdn." not in html and "https://" not in html, path
        assert "/static/docs/" in html
    csp = client.get("/docs").headers["content-security-policy"]
    assert "'sha256-" in csp and "unsafe-inline' ;" not in csp  # the inline start-up script by hash only
    assert client.get("/static/docs/redoc.standalone.js").status_code == 200
    assert client.get("/static/docs/other.js").status_code == 404


def test_body_too_large_still_has_security_headers(client):
    r = client.post("/trends/tables", headers={**auth(client.key), "content-length": str(10**10)}, content=b"")
    assert r.status_code == 413
    assert r.headers["x-content-type-options"] == "nosniff"


def test_job_errors_carry_no_server_paths_or_sql(lake):
    from visionlake.service.jobs import job_info, public_error
    from visionlake.service.models import Job

    sql = ("(sqlite3.IntegrityError) UNIQUE constraint failed: images.collection_id, images.sha256 "
           "[SQL: INSERT INTO images (collection_id, sha256) VALUES (?, ?)] [parameters: (1, 'ab')]")
    assert "SQL" not in public_error(sql) and "INSERT" not in public_error(sql)
    leaked = f"cannot read {lake.root}/uploads/people/9f2c/IMG_0001.jpg: permission denied"
    shown = public_error(leaked)
    assert str(lake.root) not in shown and "uploads" not in shown and "IMG_0001.jpg" in shown
    row = Job(id=1, collection="c", source=str(lake.root / "uploads" / "x"), source_kind="upload",
              status="failed", error=leaked, created_by="key:a", created_at=datetime.now(UTC))
    assert str(lake.root) not in job_info(row)["error"]


# ------------------------------------------------------------------------------------- slow clients
class _Quick:
    """Short timers for the test (the defaults are 10 s for a head and 30 s of body silence)."""

    header_timeout_s = 1.0
    body_idle_timeout_s = 1.0


def _guarded_protocols() -> list:
    from visionlake.service import server

    return [p for p in (server.GuardedHttpToolsProtocol, server.GuardedH11Protocol) if p is not None]


@pytest.fixture(params=_guarded_protocols(), ids=lambda p: p.__name__)
def live_server(lake, request):
    """The app under uvicorn with each guarded protocol (httptools, the default, and h11, its fallback)."""
    import uvicorn

    from visionlake.service.server import uvicorn_config

    class Quick(_Quick, request.param):
        pass

    app = create_app(lake=lake, job_workers=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = uvicorn_config(app, "127.0.0.1", port, "warning")
    cfg.http = Quick
    srv = uvicorn.Server(cfg)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield port
    srv.should_exit = True
    t.join(timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed the connection (recv gives b"" or a reset), None if it did not."""
    t0 = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - t0 < seconds:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - t0
        if data == b"" or data.startswith(b"HTTP/1.1 4"):
            return time.monotonic() - t0
    return None


def test_partial_header_connections_are_closed(live_server):
    socks = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", live_server), timeout=2)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            socks.append(s)
        for s in socks:
            assert _closed_within(s, 5.0) is not None
    finally:
        for s in socks:
            s.close()


def test_a_trickled_header_is_closed_at_its_deadline(live_server):
    with socket.create_connection(("127.0.0.1", live_server), timeout=2) as s:
        t0 = time.monotonic()
        closed = False
        for ch in b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":
            try:
                s.sendall(bytes([ch]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.2)
            if time.monotonic() - t0 > 6:
                break
        assert closed or _closed_within(s, 3.0) is not None
        assert time.monotonic() - t0 < 6.0  # activity does not extend the head's deadline


def test_silent_connection_and_stalled_body_are_closed(live_server):
    with socket.create_connection(("127.0.0.1", live_server), timeout=2) as silent, \
            socket.create_connection(("127.0.0.1", live_server), timeout=2) as stalled:
        stalled.sendall(b"POST /trends/tables HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
                        b"Content-Type: text/csv\r\n\r\n" + b"x" * 10)
        assert _closed_within(silent, 5.0) is not None
        assert _closed_within(stalled, 5.0) is not None


def test_normal_requests_still_work_and_keep_alive(live_server):
    with socket.create_connection(("127.0.0.1", live_server), timeout=5) as s:
        for _ in range(2):
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = s.recv(4096)
                assert chunk, "closed too early"
                data += chunk
            assert data.startswith(b"HTTP/1.1 200")
            if not _:
                time.sleep(1.3)  # longer than the (test) head timeout: an idle keep-alive is not a slow head


def test_an_oversized_request_head_is_refused(live_server):
    with socket.create_connection(("127.0.0.1", live_server), timeout=5) as s:
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Big: " + b"a" * 70_000)
            time.sleep(0.3)  # the server holds an incomplete head of 70 KB: over MAX_HEAD_BYTES
            s.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            return  # closed while we were still sending: refused
        data = b""
        s.settimeout(3)
        try:
            while chunk := s.recv(4096):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        assert not data.startswith(b"HTTP/1.1 200")
        assert data == b"" or data.startswith(b"HTTP/1.1 4")


def test_serve_parses_with_httptools_on_the_asyncio_loop():
    """httptools is a core dependency; the loop is named (uvicorn's "auto" would take uvloop when it
    happens to be installed, which accepted new connections one per loop iteration under load)."""
    from visionlake.service.server import GuardedHttpToolsProtocol, server_settings

    settings = server_settings()
    assert GuardedHttpToolsProtocol is not None  # a broken install of the dependency fails here
    assert settings["http"] is GuardedHttpToolsProtocol and settings["loop"] == "asyncio"


def test_serve_falls_back_to_h11_without_httptools(monkeypatch):
    from visionlake.service import server

    monkeypatch.setattr(server, "GuardedHttpToolsProtocol", None)
    settings = server.server_settings()
    assert settings["http"] is server.GuardedH11Protocol and settings["loop"] == "asyncio"
    assert settings["limit_concurrency"] == server.MAX_CONNECTIONS  # the same limits either way


# ------------------------------------------------------------------------------------------- serve
def test_serve_on_a_busy_port_says_so_and_exits_1(tmp_path, monkeypatch, capsys):
    from visionlake.cli import build_app
    from visionlake.cli.common import run_cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        monkeypatch.setattr(sys, "argv", ["visionlake", "serve", "--port", str(port), "--lake", str(tmp_path / "lake")])
        code = run_cli(build_app())
    err = capsys.readouterr().err
    assert code == 1, err
    assert "already in use" in err and "Traceback" not in err
    assert not (tmp_path / "lake").exists()  # nothing was created for a server that could not start
