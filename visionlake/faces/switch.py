"""Switch a faces collection to another face pack: re-embed every face, keep identities, erase the old.

``visionlake faces switch-pack -c C --pack arcface-s`` (or :func:`switch_pack`):

1. records the switch in the collection's settings (``faces_switch``) and makes the new pack the
   collection's pack; from here until the end, enroll/identify/ingest refuse the collection (two
   embedding spaces are never compared);
2. closes the old vector index and overwrites its files with zeros before removing them;
3. re-analyses every image with the new pack through ``visionlake analyse``'s machinery (chunks,
   one transaction per chunk, resumable after ``kill -9``): per image the old face rows are deleted
   with SQLite ``secure_delete`` and the new faces inserted, each carrying the person and group of
   the old face it re-finds (see :func:`visionlake.faces.analyser.carry_identities`);
4. deletes the old templates of images whose source file is gone (reported: their people keep their
   identity but lose those faces), and the crops nobody points at any more; checkpoints the WAL;
5. rebuilds the index from the catalog (new dimension) and clears the switch marker;
6. verifies, like ``forget``: no face row of the old embedding space, and no file in the lake holding
   a sampled old template (plaintext float32/float64 or its ciphertext).

Running the same command again after a crash resumes at the step it reached. Thresholds need no
work: they are looked up by embedding space, and every pack ships its own calibrated table.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select, text

from visionlake.catalog.models import Collection
from visionlake.errors import BadInput
from visionlake.faces.analyser import FaceAnalyser, carry_identities
from visionlake.faces.collection_pack import pack_of, pack_options, require_licence
from visionlake.faces.models import Face
from visionlake.faces.packs import pack_info
from visionlake.faces.sync import SPACE, seal, sync_index, unseal

#: how many old templates the final byte scan looks for (each one is a pattern over every lake file)
SCAN_SAMPLE = 200
STATE = "faces_switch"


def switching(collection: Any) -> dict[str, Any] | None:
    """The unfinished switch of a collection, if any."""
    return (collection.settings or {}).get(STATE)


def _secure(session: Any) -> None:
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA secure_delete=ON"))


class FaceSwitchAnalyser(FaceAnalyser):
    """The face analyser of a switch: replaces an image's faces without touching the (dropped) index."""

    def persist(self, lake, session, collection, image_id, result) -> None:  # type: ignore[override]
        _secure(session)
        old = session.query(Face).filter(Face.image_id == image_id).all()
        faces = result.get("faces") or []
        carried = carry_identities(old, faces)
        for row in old:
            session.delete(row)
        session.flush()
        for f, (person_id, group_id) in zip(faces, carried, strict=True):
            session.add(Face(collection_id=collection.id, image_id=image_id, box=f["box"],
                             landmarks=f["landmarks"], score=f["score"], quality=f["quality"], crop=f["crop"],
                             embedding=seal(lake.cipher, np.frombuffer(f["embedding"], dtype=np.float32)),
                             pack=result["pack"], person_id=person_id, group_id=group_id))

    def finalize(self, lake, collection) -> None:  # type: ignore[override]
        """Nothing: the index is rebuilt once, after every image is done."""


def _set_settings(lake: Any, collection_id: int, update: Callable[[dict[str, Any]], None]) -> Collection:
    with lake.session() as s:
        row = s.get(Collection, collection_id)
        settings = dict(row.settings or {})
        update(settings)
        row.settings = settings
        return row


def _wipe_index_files(lake: Any, collection: str) -> int:
    """Close the cached index and overwrite its files with zeros before unlinking them."""
    ix = lake._indexes.pop((collection, SPACE), None)
    if ix is not None:
        ix.close()
    engine = lake.settings.get("index", "faiss")
    if engine != "faiss":
        from visionlake.index.milvus_index import MilvusIndex, existing_dim

        dim = existing_dim(engine, f"{collection}__{SPACE}")
        if dim is not None:
            MilvusIndex(engine, dim=dim, collection=f"{collection}__{SPACE}").drop()
        return 0
    folder = lake.collection_dir(collection) / "index" / SPACE
    n = 0
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if p.is_file():
                size = p.stat().st_size
                with open(p, "r+b") as fh:
                    fh.write(b"\0" * size)
                    fh.flush()
                    os.fsync(fh.fileno())
                p.unlink()
                n += 1
    return n


def _sample_old_templates(lake: Any, collection_id: int, new_space: str) -> list[tuple[bytes, np.ndarray]]:
    with lake.session() as s:
        blobs = s.scalars(select(Face.embedding).where(Face.collection_id == collection_id, Face.pack != new_space,
                                                       Face.embedding.is_not(None))
                          .order_by(Face.id).limit(SCAN_SAMPLE)).all()
    return [(bytes(b), unseal(lake.cipher, b)) for b in blobs]


def _unreferenced_crops(lake: Any, collection: Any) -> list[Path]:
    """Crop files of the collection that no face row points at (left by faces the new pack did not find)."""
    root = lake.collection_dir(collection.name) / "crops"
    if not root.is_dir():
        return []
    with lake.session() as s:
        used = set(s.scalars(select(Face.crop).where(Face.collection_id == collection.id, Face.crop.is_not(None))))
    return [p for p in root.rglob("*.jpg") if str(p.relative_to(lake.root)) not in used]


def switch_pack(lake: Any, collection: str, pack: str, workers: int | None = None,
                progress: Callable[[int], None] | None = None,
                on_total: Callable[[int | None], None] | None = None, scan_files: bool = True,
                chunk_size: int = 16, **pack_opts: Any) -> dict[str, Any]:
    """Re-embed a collection with ``pack`` (see the module docstring); returns a report with checks."""
    from visionlake.analysers.rerun import analyse
    from visionlake.faces.erasure import flush_sqlite, scan_lake_files

    info = pack_info(pack)
    if info.space is None:
        raise BadInput(f"switch-pack needs a pack with fixed models (dlib, arcface-s), not {pack!r}")
    require_licence(lake, pack)
    col = lake.collection(collection)
    if col.purpose != "faces":
        raise BadInput(f"collection {collection!r} is a {col.purpose!r} collection, not a faces collection")
    state = switching(col)
    old_pack = pack_of(col)
    if state is None:
        with lake.session() as s:
            stale = s.scalar(select(func.count(Face.id)).where(Face.collection_id == col.id,
                                                               Face.pack != info.space)) or 0
        if old_pack == pack and not stale:
            return {"collection": collection, "pack": pack, "changed": False, "checks": [], "ok": True}
        opts = {**pack_options(col), **pack_opts, "pack": pack}

        def start(settings: dict[str, Any]) -> None:
            settings[STATE] = {"from": old_pack, "to": pack, "stage": "reembed",
                               "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
            settings["faces_options"] = opts

        col = _set_settings(lake, col.id, start)
        state = switching(col)
    elif state["to"] != pack:
        raise BadInput(f"collection {collection!r} is being switched to {state['to']!r}; finish that first: "
                       f"`visionlake faces switch-pack -c {collection} --pack {state['to']}`")
    assert state is not None
    samples = _sample_old_templates(lake, col.id, str(info.space)) if scan_files else []
    wiped = _wipe_index_files(lake, col.name)

    opts = pack_options(col)
    opts.pop("pack", None)
    if state.get("stage") == "reembed":
        report = analyse(lake, col.name, workers=workers, progress=progress, on_total=on_total, chunk_size=chunk_size,
                         instances=[FaceSwitchAnalyser(pack=pack, **opts)], purpose=f"switch-pack:{pack}")

        def reembedded(settings: dict[str, Any]) -> None:
            settings[STATE] = {**settings[STATE], "stage": "cleanup",
                               "reembed": {k: v for k, v in report.items() if k != "problems"}}

        col = _set_settings(lake, col.id, reembedded)
    else:  # a crash after re-embedding: the run's figures were kept in the marker
        report = {**state.get("reembed", {}), "problems": [], "resumed": True}

    # 4. old templates that could not be re-embedded (source gone) go too
    with lake.session() as s:
        _secure(s)
        left = s.scalars(select(Face).where(Face.collection_id == col.id, Face.pack != info.space)).all()
        lost_people = sorted({f.person_id for f in left if f.person_id is not None})
        for row in left:
            s.delete(row)
    crops = _unreferenced_crops(lake, col)
    for p in crops:
        p.unlink(missing_ok=True)
    flush_sqlite(lake)

    # 5. the new index, then the switch is over
    dim = int(info.dim) if info.dim else None
    synced = sync_index(lake, col.name, dim=dim)
    col = _set_settings(lake, col.id, lambda st: st.pop(STATE, None))

    # 6. verification, independent of the code above
    checks: list[dict[str, Any]] = []

    def check(what: str, found: list[Any]) -> None:
        checks.append({"check": what, "ok": not found, "found": found[:10]})

    with lake.session() as s:
        check(f"no face row of another pack than {info.space!r}",
              s.scalars(select(Face.id).where(Face.collection_id == col.id, Face.pack != info.space)).all())
        enrolled_faces = dict(s.execute(select(Face.person_id, func.count(Face.id))
                                        .where(Face.collection_id == col.id, Face.person_id.is_not(None))
                                        .group_by(Face.person_id)).all())
    header = lake.index_header(col.name, SPACE)
    check("the face index has the new pack's dimension",
          [] if header is None or dim is None or int(header["dim"]) == dim else [f"dim {header['dim']}"])
    if scan_files and samples:
        patterns: dict[str, Any] = {}
        for i, (blob, vec) in enumerate(samples):
            patterns[f"old template {i} (float32)"] = np.asarray(vec, dtype=np.float32).tobytes()
            patterns[f"old template {i} (float64)"] = np.asarray(vec, dtype=np.float64).tobytes()
            patterns[f"old template {i} (ciphertext)"] = blob
        hits, scanned = scan_lake_files(lake.root, patterns)
        check(f"no file in the lake holds an old template ({len(samples)} sampled, {scanned} files scanned)", hits)
    return {
        "collection": col.name,
        "from": state["from"],
        "pack": pack,
        "space": info.space,
        "changed": True,
        "images": report["images"],
        "analysed": report["analysed"],
        "missing": report["missing"],
        "errors": report["errors"],
        "resumed": report["resumed"],
        "old_faces_without_source": len(left),
        "people_who_lost_faces": len(lost_people),
        "people_with_faces": len(enrolled_faces),
        "index": synced,
        "index_files_wiped": wiped,
        "crops_removed": len(crops),
        "problems": report["problems"],
        "wall_s": report["wall_s"],
        "checks": checks,
        "ok": all(c["ok"] for c in checks),
    }


__all__ = ["FaceSwitchAnalyser", "switch_pack", "switching"]
