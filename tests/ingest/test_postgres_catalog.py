"""The catalog works the same on PostgreSQL: a throw-away server is started for this test.

Skipped with a message when the PostgreSQL server binaries (Debian's ``postgresql`` package) or the
``psycopg`` driver (extra ``postgres``) are missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url():
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install 'visionlake[postgres]')")
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin")) if Path("/usr/lib/postgresql").exists() else []
    if not bins:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    pg = bins[-1]
    data = Path(tempfile.mkdtemp(prefix="vl-pg-"))
    port = _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_user + [str(pg / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], check=True,
                   capture_output=True)
    proc = subprocess.Popen(as_user + [str(pg / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
                                       "-c", "listen_addresses=127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    import sqlalchemy

    deadline = time.time() + 30
    while True:
        try:
            sqlalchemy.create_engine(url).connect().close()
            break
        except Exception:
            if time.time() > deadline:
                proc.terminate()
                pytest.skip("PostgreSQL did not start")
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)


def test_ingest_and_metadata_queries_on_postgresql(tmp_path, pg_url):
    from test_bad_files import build_corpus

    from visionlake.ingest import ingest
    from visionlake.lake import Lake

    expected = build_corpus(tmp_path / "corpus")
    lake = Lake(tmp_path / "lake", catalog_url=pg_url)
    assert lake.catalog_url.startswith("postgresql")
    lake.create_collection("c", "plain")
    report = ingest(lake, tmp_path / "corpus", "c", workers=2)
    n_bad = sum(1 for s, _ in expected.values() if s == "rejected")
    assert report["rejected"] == n_bad and report["ingested"] == len(expected) - n_bad
    again = ingest(lake, tmp_path / "corpus", "c", workers=2)
    assert again["ingested"] == 0
    # the lake remembers its catalog URL; metadata filters use JSON operators on PostgreSQL too
    reopened = Lake(tmp_path / "lake")
    assert reopened.catalog_url == pg_url
    assert len(reopened.images("c")) == len(expected) - n_bad
    assert "password" not in reopened.info()["catalog"]
