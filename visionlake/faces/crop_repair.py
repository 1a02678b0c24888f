"""Rebuild face crops from the catalog and the source photos (what ``visionlake repair`` runs).

A face crop is a derived file, like a thumbnail: the catalog holds everything it is made from (the
source photo's path and SHA-256, the face's box and five landmarks, the pack that aligned it), so a
missing or damaged crop is cut again from the source with the same pack and size. The same pack and
the same decoder (:func:`visionlake.imageio.decode`) give the same pixels, hence the same JPEG bytes.

What is never regenerated: a crop whose face row is gone (an erased person's faces are deleted from
the catalog in the erasure's first transaction, so nothing points at their crops any more), a crop
listed by an erasure journal still in progress (belt and braces: a row that a crash left behind must
not bring a file back), and a crop of a face that retention purged (its ``crop`` column is cleared).
When the source photo is gone or changed, or the collection now uses another pack, the crop is
reported as not repaired, with the reason.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from visionlake.catalog.models import Collection, Image, SourcePath
from visionlake.errors import VisionLakeError
from visionlake.faces.analyser import save_crop
from visionlake.faces.models import ErasureJournal, Face
from visionlake.faces.protocols import DetectedFace

if TYPE_CHECKING:
    from visionlake.lake import Lake

#: Side of the crops written by enrollment and (by default) ingestion.
DEFAULT_CROP_SIZE = 160


def erasure_files(lake: Lake) -> set[str]:
    """Lake-relative files that an erasure journal (pending or done) says must be gone."""
    with lake.session() as s:
        plans = s.scalars(select(ErasureJournal.plan)).all()
    return {str(f) for plan in plans for f in ((plan or {}).get("files") or [])}


def _source_bytes(lake: Lake, image: Image, paths: list[str]) -> tuple[bytes | None, str]:
    """The source photo's bytes when some known copy still has its SHA-256; else (None, why not)."""
    candidates = [image.path, *[p for p in paths if p != image.path]]
    stored = (image.meta or {}).get("stored")
    if stored:
        candidates.append(str(lake.root / stored))
    changed = False
    for path in candidates:
        try:
            data = Path(path).read_bytes()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() == image.sha256:
            return data, ""
        changed = True
    return None, ("changed since ingest" if changed else "is gone")


def repair_crops(lake: Lake, is_ok: Callable[[Path], bool]) -> tuple[int, list[dict[str, Any]]]:
    """Regenerate every crop the catalog points at that ``is_ok`` rejects; (fixed, could not).

    Each entry of the second list is ``{"file", "problem", "kind": "crop"}``, as ``repair`` reports.
    """
    from visionlake.faces.collection_pack import pack_options, pipeline_for
    from visionlake.imageio import Rejected, decode

    with lake.session() as s:
        rows = s.execute(select(Face.id, Face.image_id, Face.crop, Face.box, Face.landmarks, Face.score,
                                Face.quality, Face.pack, Face.collection_id)
                         .where(Face.crop.is_not(None))).all()
    bad = [r for r in rows if not is_ok(lake.root / r.crop)]
    if not bad:
        return 0, []
    forbidden = erasure_files(lake)
    could_not: list[dict[str, Any]] = []

    def fail(rel: str, why: str) -> None:
        could_not.append({"file": rel, "problem": why, "kind": "crop"})

    by_image: dict[int, list[Any]] = defaultdict(list)
    for r in bad:
        if r.crop in forbidden:
            fail(r.crop, "belongs to an erasure: not regenerated")
        else:
            by_image[int(r.image_id)].append(r)
    pipelines: dict[int, Any] = {}
    fixed = 0
    for image_id, faces in sorted(by_image.items()):
        with lake.session() as s:
            image = s.get(Image, image_id)
            col = s.get(Collection, faces[0].collection_id)
            paths = list(s.scalars(select(SourcePath.path).where(SourcePath.image_id == image_id)))
        if image is None or col is None:
            for r in faces:
                fail(r.crop, "its image is no longer in the catalog")
            continue
        data, why = _source_bytes(lake, image, paths)
        if data is None:
            for r in faces:
                fail(r.crop, f"source {image.path!r} {why}: cannot be regenerated")
            continue
        if col.id not in pipelines:
            try:
                pipelines[col.id] = pipeline_for(lake, col)
            except VisionLakeError as exc:
                pipelines[col.id] = exc
        pipe = pipelines[col.id]
        if isinstance(pipe, VisionLakeError):
            for r in faces:
                fail(r.crop, f"the face pack of {col.name!r} is not available: {pipe.message}")
            continue
        try:
            picture = decode(data).image
        except Rejected as exc:
            for r in faces:
                fail(r.crop, f"source {image.path!r} cannot be decoded ({exc.reason})")
            continue
        size = int(pack_options(col).get("crop_size", DEFAULT_CROP_SIZE))
        for r in faces:
            if r.pack != pipe.name:
                fail(r.crop, f"made by pack {r.pack!r}, collection {col.name!r} now uses {pipe.name!r}")
                continue
            face = DetectedFace(box=tuple(int(v) for v in r.box),  # type: ignore[arg-type]
                                landmarks=[(float(x), float(y)) for x, y in r.landmarks or []],
                                score=float(r.score or 0.0), quality=float(r.quality or 0.0))
            save_crop(lake.root, r.crop, pipe.crop(picture, face, size=size))
            fixed += 1
    return fixed, could_not


__all__ = ["DEFAULT_CROP_SIZE", "erasure_files", "repair_crops"]
