"""The one list of the project's areas (faces, fashion, trends) and where each plugs in.

The catalog creates each area's tables, the service mounts each area's routes and the CLI adds each
area's command group from this list, by module name, so that a core module never imports an area.
Every module named here is part of the package: importing it must succeed, and a failure (a typo,
a broken import) is raised, never turned into a silently missing feature. Optional *extras*
(milvus, ray, clip, postgres) are imported only where used and fail there with a message naming
the extra (see :data:`EXTRAS`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Area:
    """One area: its catalog tables, service routes and CLI group, each a module name."""

    name: str
    #: One line shown as the CLI group's help.
    summary: str
    #: Module defining the area's tables on the catalog's ``Base`` (None: no tables of its own).
    tables: str | None
    #: Module with the area's FastAPI ``router``.
    routes: str
    #: Module with the area's Typer ``app``.
    cli: str


AREAS: tuple[Area, ...] = (
    Area("faces", "Detect, verify, enroll, identify, cluster and forget faces.",
         "visionlake.faces.models", "visionlake.service.routes.faces", "visionlake.cli.faces"),
    Area("fashion", "Tag garments, name colours, train heads on your labels, search looks.",
         "visionlake.fashion.models", "visionlake.service.routes.fashion", "visionlake.cli.fashion"),
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


def missing_extra(exc: ImportError) -> str | None:
    """The extra whose absence caused ``exc``, or None when it is anything else (our own code included)."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    for extra, modules in EXTRAS.items():
        if name in modules:
            return extra
    return None


__all__ = ["AREAS", "EXTRAS", "Area", "missing_extra"]
