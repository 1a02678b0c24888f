"""Engine creation and schema management for the catalog database."""

from __future__ import annotations

import importlib
from pathlib import Path

from sqlalchemy import Engine, create_engine, event

from visionlake.areas import AREAS, missing_extra
from visionlake.catalog.models import Base
from visionlake.errors import BadInput

#: Modules that define tables on :class:`Base`, imported before ``create_all``: the catalog's own, each
#: area's (from :data:`visionlake.areas.AREAS`) and the service's (keys, jobs, audit).
MODEL_MODULES: list[str] = [
    "visionlake.catalog.models",
    "visionlake.catalog.analysis",
    *(a.tables for a in AREAS if a.tables),
    "visionlake.service.models",
    "visionlake.keyring",
]


def sqlite_url(path: Path) -> str:
    """URL of the embedded catalog file inside a lake."""
    return f"sqlite:///{path.resolve()}"


def create_catalog_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys so that crashes lose nothing."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except ImportError as exc:  # the database driver is an optional extra (postgres)
        extra = missing_extra(exc)
        if extra is None:
            raise
        raise BadInput(f"this catalog URL needs the '{extra}' extra ({exc.name} is not installed): "
                       f"pip install 'visionlake[{extra}]'") from None


def ensure_schema(engine: Engine) -> None:
    """Create every table that does not exist yet (idempotent).

    A model module may define ``after_schema(engine)``: it runs after ``create_all`` for what
    ``create_all`` cannot do on an existing lake (a column added to an old table, triggers).
    """
    modules = []
    for name in MODEL_MODULES:
        modules.append(importlib.import_module(name))  # part of the package: a failure is a bug, raised
    Base.metadata.create_all(engine)
    for mod in modules:
        hook = getattr(mod, "after_schema", None)
        if hook is not None:
            hook(engine)
