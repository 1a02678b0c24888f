"""No person's name in the web server's access log (issue 12 item 3).

Before: ``DELETE /collections/people/people/Tony%20Blair`` was written verbatim by uvicorn. Now the
person endpoints take ids (or a name in the JSON body), and the access log filter redacts any
name-like segment a client still puts under ``/people/``.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request

import pytest

from visionlake.service.access_log import REDACTED, RedactPeoplePaths, redact_path


@pytest.mark.parametrize("path,want", [
    ("/collections/people/people/Tony%20Blair", f"/collections/people/people/{REDACTED}"),
    ("/collections/people/people/Tony Blair/x", f"/collections/people/people/{REDACTED}/{REDACTED}"),
    ("/collections/people/people/17", "/collections/people/people/17"),
    ("/collections/people/people/forget", "/collections/people/people/forget"),
    ("/collections/people/people?name=Tony", f"/collections/people/people?{REDACTED}"),
    ("/collections/people/people", "/collections/people/people"),
    ("/collections/people/faces/3/crop", "/collections/people/faces/3/crop"),
    ("/health", "/health"),
])
def test_redact_path(path, want):
    assert redact_path(path) == want


def test_uvicorn_access_log_of_a_running_server_has_no_name(tmp_path, monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")  # an optional extra, not the project's own module
    from visionlake.lake import Lake
    from visionlake.service.app import create_app

    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    app = create_app(lake=Lake(tmp_path / "lake"), job_workers=1, retention_interval_s=3600)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="info", lifespan="on")  # configures logging
    server = uvicorn.Server(config)
    access = logging.getLogger("uvicorn.access")
    handler = Collect()
    access.addHandler(handler)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        req = urllib.request.Request(f"http://127.0.0.1:{port}/collections/people/people/Tony%20Blair",
                                     method="DELETE")
        try:
            urllib.request.urlopen(req, timeout=30)
        except urllib.error.HTTPError as exc:
            assert exc.code in (401, 404, 422)
        for _ in range(100):
            if lines:
                break
            time.sleep(0.05)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        access.removeHandler(handler)
    assert lines, "no access log line was written"
    assert any("DELETE" in line and REDACTED in line for line in lines), lines
    assert not any("Tony" in line or "Blair" in line for line in lines), lines
    assert any(isinstance(f, RedactPeoplePaths) for f in access.filters)
