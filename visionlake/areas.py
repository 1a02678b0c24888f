"""The one list of the project's areas (faces, fashion, trends) and where each plugs in.

From this list, by module name, the catalog creates each area's tables, the service mounts its routes,
the CLI adds its command group, ingestion picks its analysers, the lake runs its open hook and the
key ring reaches its encrypted columns: core modules never import an area, and adding an area is
one entry here.
Every module named here is part of the package: importing it must succeed, and a failure (a typo,
a broken import) is raised, never turned into a silently missing feature. Optional *extras*
(milvus, ray, clip, postgres) are imported only where used and fail there with a message naming
the extra (see :data:`EXTRAS`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SealedColumn:
    """A catalog column whose values are encrypted with the lake key.

    The key ring checks a new key against one stored value and re-encrypts every value on rotation;
    it reaches the column through this record, so core code never imports an area's tables.
    """

    #: ``"module:Class"`` of the table's ORM model.
    model: str
    #: Attribute holding the ciphertext, and the integer primary key rows are walked by.
    column: str
    id_column: str
    #: Associated data every value was sealed with.
    associated: bytes


@dataclass(frozen=True)
class IndexSpace:
    """How a vector space derived from the catalog is listed and resynced (``"module:function"`` refs).

    ``sync(lake, collection, save=, backfill=)`` makes the index hold exactly the catalog's vectors;
    ``catalog_ids(lake, collection_id)`` and ``catalog_dim(lake, collection_id)`` describe them.
    """

    sync: str
    catalog_ids: str
    catalog_dim: str


@dataclass(frozen=True)
class Area:
    """One area and the places it plugs into, each named as a module (or ``"module:attribute"``)."""

    name: str
    #: One line shown as the CLI group's help.
    summary: str
    #: Module defining the area's tables on the catalog's ``Base`` (None: no tables of its own).
    tables: str | None
    #: Module with the area's FastAPI ``router``.
    routes: str
    #: Module with the area's Typer ``app``.
    cli: str
    #: ``"module:function"`` run with each :class:`~visionlake.lake.Lake` as it opens (None: nothing).
    on_lake_open: str | None = None
    #: Columns of the area's tables encrypted with the lake key.
    sealed: tuple[SealedColumn, ...] = ()
    #: (name, ``"module:Class"``) of the analysers ingestion runs, in order after the thumbnail, on a
    #: collection whose purpose is this area's name (none: the area is not a collection purpose).
    analysers: tuple[tuple[str, str], ...] = ()
    #: The area's vector space derived from the catalog (its index is rebuilt and resynced from it).
    index_space: IndexSpace | None = None


AREAS: tuple[Area, ...] = (
    Area("faces", "Detect, verify, enroll, identify, cluster and forget faces.",
         "visionlake.faces.models", "visionlake.service.routes.faces", "visionlake.cli.faces",
         # erasures of people that a crash interrupted are finished before anything else reads the lake
         on_lake_open="visionlake.faces.erasure:finish_pending",
         sealed=(SealedColumn("visionlake.faces.models:Face", "embedding", "id",
                              b"visionlake:face-embedding:v1"),),
         analysers=(("faces", "visionlake.faces.analyser:FaceAnalyser"),),
         index_space=IndexSpace("visionlake.faces.sync:sync_faces", "visionlake.faces.sync:faces_catalog_ids",
                                "visionlake.faces.sync:collection_dim")),
    Area("fashion", "Tag garments, name colours, train heads on your labels, search looks.",
         "visionlake.fashion.models", "visionlake.service.routes.fashion", "visionlake.cli.fashion",
         analysers=(("colour", "visionlake.fashion.analyser:ColourAnalyser"),
                    ("tagger", "visionlake.fashion.analyser:TaggerAnalyser")),
         index_space=IndexSpace("visionlake.fashion.resync:sync_fashion",
                                "visionlake.fashion.resync:fashion_catalog_ids",
                                "visionlake.fashion.resync:fashion_index_dim")),
    Area("trends", "Attribute curves, rising/falling signals, forecasts and reports.",
         None, "visionlake.service.routes.trends", "visionlake.cli.trends"),
)

#: Optional extra (``pip install 'visionlake[NAME]'``) -> the third-party modules it provides.
EXTRAS: dict[str, tuple[str, ...]] = {
    "milvus": ("pymilvus", "milvus_lite"),
    "ray": ("ray",),
    "clip": ("open_clip", "torch", "torchvision"),
    "postgres": ("psycopg", "psycopg2"),
}


def resolve(ref: str) -> Any:
    """The object a ``"module:attribute"`` reference names (imported; a failure is raised)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def lake_open_hooks() -> Iterator[Callable[[Any], object]]:
    """Each area's ``on_lake_open`` function, in area order."""
    for area in AREAS:
        if area.on_lake_open:
            yield resolve(area.on_lake_open)


def sealed_columns() -> Iterator[tuple[Any, SealedColumn]]:
    """(ORM model, record) of every column encrypted with the lake key."""
    for area in AREAS:
        for sealed in area.sealed:
            yield resolve(sealed.model), sealed


#: Spaces whose index can be rebuilt from the catalog alone (an area with an ``index_space``).
DERIVED_SPACES: tuple[str, ...] = tuple(a.name for a in AREAS if a.index_space)


def index_space(space: str) -> IndexSpace | None:
    """The :class:`IndexSpace` of the area named ``space`` (None: no index derived from the catalog)."""
    return next((a.index_space for a in AREAS if a.name == space), None)


def missing_extra(exc: ImportError) -> str | None:
    """The extra whose absence caused ``exc``, or None when it is anything else (our own code included)."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    for extra, modules in EXTRAS.items():
        if name in modules:
            return extra
    return None


__all__ = ["AREAS", "DERIVED_SPACES", "EXTRAS", "Area", "IndexSpace", "SealedColumn", "index_space",
           "lake_open_hooks", "missing_extra", "resolve", "sealed_columns"]
