"""Which face pack a collection uses, and the recorded licence acceptance a non-commercial pack needs.

A faces collection records its pack in ``Collection.settings["faces_options"]["pack"]`` (absent:
``dlib``), which is also what ingestion's face analyser reads, so ingestion, enrollment,
identification and re-analysis all embed with the same models. Templates of another pack are never
compared (:func:`visionlake.faces.sync.check_pack`); changing pack is ``faces switch-pack``.

Packs whose weights forbid commercial use (``arcface-s``) are never used silently: a lake uses one
only after ``visionlake faces use-pack NAME --accept-licence non-commercial``, which writes who
accepted what and when into ``lake.json`` (``licences``); ``visionlake info`` shows it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from visionlake.errors import BadInput
from visionlake.faces.packs import NON_COMMERCIAL, pack_info

#: the key of ``lake.json`` holding accepted licences: pack -> {licence, terms, accepted_by, accepted_at}
SETTING = "licences"


class LicenceNotAccepted(BadInput):
    """A non-commercial pack was asked for in a lake that has not recorded accepting its licence."""

    code = "licence_not_accepted"


def pack_of(collection: Any) -> str:
    """The pack a collection uses (``dlib`` unless its settings say otherwise)."""
    opts = (collection.settings or {}).get("faces_options") or {}
    return str(opts.get("pack", "dlib"))


def pack_options(collection: Any) -> dict[str, Any]:
    """The face analyser options of a collection (pack plus any tuned settings)."""
    return dict((collection.settings or {}).get("faces_options") or {})


def accepted(lake: Any, pack: str) -> dict[str, Any] | None:
    """The recorded acceptance of a pack's licence in this lake, or None."""
    return (lake.settings.get(SETTING) or {}).get(pack)


def require_licence(lake: Any, pack: str) -> None:
    """Refuse to use a non-commercial pack in a lake without a recorded acceptance."""
    info = pack_info(pack)
    if info.commercial_use or accepted(lake, pack):
        return
    raise LicenceNotAccepted(
        f"face pack {pack!r} is licensed for {info.licence.split(':', 1)[-1].strip()}; to use it in this lake, "
        f"accept that once: `visionlake faces use-pack {pack} --accept-licence {NON_COMMERCIAL}`"
    )


def accept_licence(lake: Any, pack: str, licence: str | None, actor: str | None = None) -> dict[str, Any]:
    """Record that ``actor`` accepts a pack's licence (the word must match: ``non-commercial``)."""
    from visionlake.faces.audit import current_actor

    info = pack_info(pack)
    if info.commercial_use:
        return {"pack": pack, "licence": info.licence, "needs_acceptance": False}
    if licence != NON_COMMERCIAL:
        raise LicenceNotAccepted(
            f"face pack {pack!r}: {info.licence}. Using it needs `--accept-licence {NON_COMMERCIAL}`"
            + (f" (got {licence!r})" if licence else "")
        )
    record = {"licence": NON_COMMERCIAL, "terms": info.licence, "accepted_by": current_actor(actor),
              "accepted_at": datetime.now(UTC).isoformat(timespec="seconds")}
    licences = dict(lake.settings.get(SETTING) or {})
    licences[pack] = record
    lake.set_setting(SETTING, licences)
    return {"pack": pack, **record, "needs_acceptance": True}


def set_collection_pack(lake: Any, collection: str, pack: str) -> dict[str, Any]:
    """Make an empty (face-less) faces collection use ``pack``; one with faces needs ``switch-pack``."""
    from sqlalchemy import func, select

    from visionlake.catalog.models import Collection
    from visionlake.faces.models import Face

    pack_info(pack)
    require_licence(lake, pack)
    col = lake.collection(collection)
    if pack_of(col) == pack:
        return {"collection": collection, "pack": pack, "changed": False}
    with lake.session() as s:
        n = s.scalar(select(func.count(Face.id)).where(Face.collection_id == col.id)) or 0
        if n:
            raise BadInput(f"collection {collection!r} holds {n} face(s) embedded with {pack_of(col)!r}; "
                           f"re-embed them with `visionlake faces switch-pack -c {collection} --pack {pack}`")
        row = s.get(Collection, col.id)
        settings = dict(row.settings or {})
        settings["faces_options"] = {**(settings.get("faces_options") or {}), "pack": pack}
        row.settings = settings
    return {"collection": collection, "pack": pack, "changed": True}


def pipeline_for(lake: Any, collection: str | Any) -> Any:
    """The process-wide pipeline of a collection's pack (licence checked), for enroll/identify/analyse."""
    from visionlake.faces.gallery import get_pipeline

    col = lake.collection(collection) if isinstance(collection, str) else collection
    opts = pack_options(col)
    pack = str(opts.pop("pack", "dlib"))
    require_licence(lake, pack)
    opts.pop("min_quality", None)
    opts.pop("crop_size", None)
    return get_pipeline(pack=pack, **opts)


def lake_licences(lake: Any) -> dict[str, Any]:
    """Accepted licences of a lake, for ``visionlake info``."""
    return dict(lake.settings.get(SETTING) or {})


__all__ = ["LicenceNotAccepted", "accept_licence", "accepted", "lake_licences", "pack_of", "pack_options",
           "pipeline_for", "require_licence", "set_collection_pack"]
