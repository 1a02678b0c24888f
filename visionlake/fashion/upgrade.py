"""Upgrade an older backbone collection from the ``pooled`` layout (1280-d) to ``rows`` (8,704-d) in one command.

``visionlake fashion upgrade -c C`` (or :func:`upgrade_layout`):

1. checks that the model cache's EfficientNet-Lite0 graph gives the ``rows`` parts (one converted by an
   older visionlake does not: the command stops and names ``visionlake models fetch efficientnet-lite0
   --force``), then records the upgrade in the collection's settings (``fashion_upgrade``: from, to,
   stage) and makes ``rows`` the collection's recorded layout, so that ingestion, ``analyse`` and
   queries of the collection from here on already embed with it;
2. re-embeds every image through ``visionlake analyse``'s machinery (chunks, one transaction per chunk
   holding the new vectors and their done markers, a progress bar, resumable after ``kill -9``). The
   catalog is the truth throughout: a collection half-way holds pooled and rows vectors side by side,
   and its index holds the pooled part of both (the same vector, :mod:`visionlake.fashion.index_vectors`),
   so search keeps working and ``visionlake check`` passes at any moment;
3. removes the old vectors of images that could not be read again (file gone or changed since
   ingestion: reported per image; ``visionlake analyse -c C -a tagger`` embeds them once they are back),
   because a pooled vector cannot live among rows vectors that heads are trained on;
4. rebuilds the similarity index from the catalog;
5. **retrains every trained head** (``fashion train``) from the labels the images carry, on the new
   vectors. Why retrain rather than remove: a head trained on 1280-d pooled vectors cannot score an
   8,704-d vector, the labels it was trained from are still in the catalog (``Image.meta``), and
   retraining is what the user would do next anyway (about 15 s per head on 3,300 photos, the same
   5-fold CV ``fashion train`` reports). A head whose labels no longer allow training (fewer
   than two classes left) is removed and the report says so. The colour head is untouched: its ``emb``
   part is the backbone's pooled features, computed from the photo, in any layout;
6. re-tags the collection's images with the retrained heads (tag source ``head``: the tags the old
   heads wrote are replaced), then clears the marker and verifies: every stored vector has the rows
   width, the index holds exactly the catalog's vectors at the pooled width, every head reads rows.

Running the same command again after a crash resumes at the stage it reached; on a collection already
on ``rows`` it says so and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, exists, func, select

from visionlake.errors import BadInput, ModelUnavailable, NotFound
from visionlake.fashion.analyser import TaggerAnalyser, _worker_threads
from visionlake.faults import crash_point

log = logging.getLogger(__name__)

#: Collection setting recording an unfinished upgrade (``info`` shows it).
UPGRADE_SETTING = "fashion_upgrade"
FETCH_FORCE = "visionlake models fetch efficientnet-lite0 --force"


class RowsEmbedder(TaggerAnalyser):
    """Re-embeds images with the ``rows`` layout: writes the catalog vector and the index's pooled part.

    Tags are left alone here (the old heads cannot read the new vectors; the upgrade retrains the heads
    and re-tags every image once, at the end), so a collection whose upgrade stops half-way keeps its tags.
    """

    name = "tagger-rows"

    def prepare(self, ctx: Any) -> None:
        from visionlake.fashion.backbone import BACKBONE_NAME, LAYOUT_ROWS, BackboneModel
        from visionlake.fashion.tagger import model_record

        self._prepared = True
        self.model = BackboneModel(layout=LAYOUT_ROWS, batch_size=self.batch_size,
                                   threads=self.threads or _worker_threads())
        self.record = model_record(self.model, BACKBONE_NAME)

    def analyse(self, images: list[Any], ctx: Any) -> list[dict[str, Any]]:
        if not self._prepared:
            self.prepare(ctx)
        if not images:
            return []
        emb = self.model.embed_images([i.image for i in images])
        return [{"vector": e.astype(np.float32).tobytes(), "model_record": self.record} for e in emb]

    def persist(self, lake, session, collection, image_id, result) -> None:  # type: ignore[override]
        from visionlake.catalog.models import Image
        from visionlake.fashion.index_vectors import index_vectors
        from visionlake.fashion.models import FashionEmbedding
        from visionlake.fashion.resync import fashion_meta
        from visionlake.fashion.search import SPACE

        if not result or "vector" not in result:
            return
        vec = np.frombuffer(result["vector"], dtype=np.float32)
        record = result["model_record"]
        session.merge(FashionEmbedding(image_id=image_id, model=str(record["name"]), dim=int(vec.shape[0]),
                                       vector=vec.tobytes()))
        img = session.get(Image, image_id)
        row = index_vectors(vec, record)  # the pooled part: the same vector the index held before
        lake.index(collection.name, SPACE, int(row.shape[1]), "cosine").add(
            [image_id], row, [fashion_meta(img.meta if img is not None else None)])
        self._dirty.add(collection.name)


def rows_record(threads: int = 1) -> dict[str, Any]:
    """The model record of the ``rows`` layout the model cache's graph gives; ModelUnavailable when the
    file is missing (with the fetch command) or was converted before the layout existed (with ``--force``)."""
    from visionlake.fashion.backbone import BACKBONE_NAME, LAYOUT_ROWS, BackboneModel
    from visionlake.fashion.tagger import model_record

    model = BackboneModel(threads=threads)  # no layout asked: the best this graph gives
    if model.layout != LAYOUT_ROWS:
        raise ModelUnavailable(f"{model.path} was converted by an older visionlake and gives only the pooled "
                               f"features, not the '{LAYOUT_ROWS}' layout: run `{FETCH_FORCE}` to convert it "
                               "again, then run this command again")
    return model_record(model, BACKBONE_NAME)


def upgrading(collection: Any) -> dict[str, Any] | None:
    """The unfinished layout upgrade of a collection, if any."""
    return (collection.settings or {}).get(UPGRADE_SETTING)


def _set_settings(lake: Any, collection_id: int, update: Callable[[dict[str, Any]], None]) -> Any:
    from visionlake.catalog.models import Collection

    with lake.session() as s:
        row = s.get(Collection, collection_id)
        settings = dict(row.settings or {})
        update(settings)
        row.settings = settings  # reassigned: JSON columns do not track in-place changes
        return row


def upgrade_layout(lake: Any, collection: str, workers: int | None = None,
                   progress: Callable[[int], None] | None = None,
                   on_total: Callable[[int | None], None] | None = None, chunk_size: int = 16,
                   folds: int = 5) -> dict[str, Any]:
    """Upgrade ``collection`` to the ``rows`` layout (see the module docstring); returns a report with checks."""
    from visionlake.analysers.rerun import analyse
    from visionlake.fashion.backbone import BACKBONE_NAME, LAYOUT_POOLED, LAYOUT_ROWS
    from visionlake.fashion.tagger import MODEL_SETTING

    col = lake.collection(collection)  # NotFound (exit 3) for an unknown name
    if col.purpose != "fashion":
        raise BadInput(f"collection {collection!r} is a {col.purpose!r} collection: only fashion collections "
                       "have an embedding layout to upgrade")
    state = upgrading(col)
    checked = False  # whether the model cache was found to give rows in this call
    if state is None:
        record = (col.settings or {}).get(MODEL_SETTING)
        if not record:
            return {"collection": collection, "changed": False, "layout": None,
                    "message": f"{collection!r} has no image embeddings yet: nothing to upgrade "
                               f"(`visionlake analyse -c {collection}` embeds it with the '{LAYOUT_ROWS}' layout)"}
        if record.get("name") != BACKBONE_NAME:
            raise BadInput(f"{collection!r} was embedded with {record.get('name')!r}, not the {BACKBONE_NAME} "
                           "backbone: embedding layouts are the backbone's, there is nothing to upgrade")
        layout = record.get("layout") or LAYOUT_POOLED
        if layout == LAYOUT_ROWS:
            return {"collection": collection, "changed": False, "layout": LAYOUT_ROWS,
                    "message": f"{collection!r} is already on the '{LAYOUT_ROWS}' layout: nothing changed"}
        target = rows_record()
        checked = True

        def start(settings: dict[str, Any]) -> None:
            settings[UPGRADE_SETTING] = {"from": record, "to": target, "stage": "reembed",
                                         "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
            settings[MODEL_SETTING] = target  # from now on every embedding of the collection is rows

        col = _set_settings(lake, col.id, start)
        state = upgrading(col)
    assert state is not None
    target = state["to"]
    if state.get("stage") == "reembed":
        if not checked:  # resuming: the cache may have changed since the upgrade started; say so before any work
            rows_record()
        run = analyse(lake, col.name, workers=workers, progress=progress, on_total=on_total,
                      chunk_size=chunk_size, instances=[RowsEmbedder()], purpose=f"fashion-upgrade:{LAYOUT_ROWS}")

        def reembedded(settings: dict[str, Any]) -> None:
            settings[UPGRADE_SETTING] = {**settings[UPGRADE_SETTING], "stage": "finish",
                                         "reembed": {k: v for k, v in run.items() if k != "problems"},
                                         "problems": run["problems"][:100]}

        col = _set_settings(lake, col.id, reembedded)
        crash_point("fashion.upgrade.reembedded")
    else:  # a crash after re-embedding: the run's figures were kept in the marker
        run = {**state.get("reembed", {}), "problems": state.get("problems", []), "resumed": True}
    state = upgrading(col) or state
    removed = _remove_old_vectors(lake, col, int(target["dim"]))
    index = _rebuild_index(lake, col.name)
    heads = _retrain_heads(lake, col.name, int(target["dim"]), folds)
    tags = _retag(lake, col)
    col = _set_settings(lake, col.id, lambda st: st.pop(UPGRADE_SETTING, None))
    checks = verify(lake, col.name)
    return {
        "collection": col.name,
        "changed": True,
        "from": state["from"].get("layout") or LAYOUT_POOLED,
        "to": LAYOUT_ROWS,
        "dim": int(target["dim"]),
        "index_dim": int(target.get("pooled_dim") or 0),
        "images": run.get("images", 0),
        "analysed": run.get("analysed", 0),
        "missing": run.get("missing", 0),
        "errors": run.get("errors", 0),
        "resumed": bool(run.get("resumed")),
        "old_vectors_removed": removed,
        "index": index,
        "heads": heads,
        "head_tags": tags,
        "problems": run.get("problems", []),
        "wall_s": run.get("wall_s"),
        "checks": checks,
        "ok": all(c["ok"] for c in checks),
    }


def _remove_old_vectors(lake: Any, col: Any, dim: int) -> int:
    """Delete the stored vectors of another width (images the re-embedding could not read)."""
    from visionlake.catalog.models import Image
    from visionlake.fashion.models import FashionEmbedding

    with lake.session() as s:
        ids = s.scalars(select(FashionEmbedding.image_id).join(Image, Image.id == FashionEmbedding.image_id)
                        .where(Image.collection_id == col.id, FashionEmbedding.dim != dim)).all()
        if ids:
            s.execute(delete(FashionEmbedding).where(FashionEmbedding.image_id.in_(ids)))
    if ids:
        log.warning("%d image(s) of %r could not be read again and lost their old embedding", len(ids), col.name)
    return len(ids)


def _rebuild_index(lake: Any, collection: str) -> dict[str, int]:
    """Empty the fashion index and fill it again from the catalog (the pooled part of each vector)."""
    from visionlake.fashion.resync import fashion_index_dim, sync_fashion
    from visionlake.fashion.search import SPACE

    col = lake.collection(collection)
    dim = fashion_index_dim(lake, col.id)
    if dim is None:  # nothing stored (every file gone): an empty index of no width is no index
        return {"count": 0}
    ix = lake.index(collection, SPACE, dim, "cosine")
    ids = ix.ids()
    if len(ids):
        ix.remove([int(i) for i in ids])
    report = sync_fashion(lake, collection, save=False, backfill=False)
    lake.index(collection, SPACE, dim, "cosine").save()
    return {"count": int(report["count"]), "dim": int(dim)}


def _retrain_heads(lake: Any, collection: str, dim: int, folds: int) -> list[dict[str, Any]]:
    """Retrain every head that reads another width; remove (and report) one whose labels no longer train."""
    from visionlake.fashion.heads import TrainedHead, heads_dir, register_head, train
    from visionlake.fashion.models import FashionHead

    out: list[dict[str, Any]] = []
    folder = heads_dir(lake, collection)
    for path in sorted(folder.glob("*.joblib")) if folder.is_dir() else []:
        try:
            old = TrainedHead.load(path)
        except Exception as exc:  # noqa: BLE001 - a damaged head is reported, `check`/`repair` deal with it
            out.append({"file": path.name, "status": "unreadable", "detail": str(exc)[:200]})
            continue
        entry: dict[str, Any] = {"label_column": old.column, "old_dim": int(old.dim),
                                 "old_cv_accuracy": round(float(old.cv_accuracy), 4)}
        if int(old.dim) == dim:  # retrained by an earlier, interrupted pass (perhaps killed before its
            register_head(lake, collection, old, path)  # catalog row was written: registering again is idempotent)
            out.append({**entry, "status": "current"})
            continue
        try:
            rep = train(lake, collection, old.column, folds=folds)
        except (BadInput, NotFound) as exc:
            path.unlink(missing_ok=True)
            col = lake.collection(collection)
            with lake.session() as s:
                s.execute(delete(FashionHead).where(FashionHead.collection_id == col.id,
                                                    FashionHead.label_column == old.column))
            out.append({**entry, "status": "removed", "detail": exc.message})
            continue
        if Path(lake.root / rep["path"]) != path:  # a file named otherwise than `fashion train` names it
            path.unlink(missing_ok=True)
        out.append({**entry, "status": "retrained", "cv_accuracy": rep["cv_accuracy"], "samples": rep["samples"],
                    "classes": rep["classes"]})
        crash_point("fashion.upgrade.head_retrained")
    return out


def _retag(lake: Any, col: Any, page: int = 512) -> int:
    """Replace the collection's head tags by the current heads' answers on the stored vectors."""
    from visionlake.catalog.models import Image
    from visionlake.fashion.heads import heads_dir
    from visionlake.fashion.models import FashionEmbedding, FashionTag
    from visionlake.fashion.tagger import load_heads

    heads = load_heads(heads_dir(lake, col.name))
    threshold = float(((col.settings or {}).get("tagger_options") or {}).get("threshold", 0.4))
    of_collection = select(Image.id).where(Image.collection_id == col.id)
    with lake.session() as s:  # images without a vector (or without any head) keep no tag an old head made
        stale = delete(FashionTag).where(FashionTag.source == "head", FashionTag.image_id.in_(of_collection))
        s.execute(stale if not heads else
                  stale.where(~exists().where(FashionEmbedding.image_id == FashionTag.image_id)))
    if not heads:
        return 0
    written, last = 0, 0
    while True:
        with lake.session() as s:
            rows = s.execute(select(FashionEmbedding.image_id, FashionEmbedding.vector)
                             .join(Image, Image.id == FashionEmbedding.image_id)
                             .where(Image.collection_id == col.id, Image.id > last)
                             .order_by(Image.id).limit(page)).all()
            if not rows:
                return written
            ids = [int(r[0]) for r in rows]
            last = ids[-1]
            vecs = np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            s.execute(delete(FashionTag).where(FashionTag.source == "head", FashionTag.image_id.in_(ids)))
            for column, head in heads.items():
                if int(head.dim) != vecs.shape[1]:
                    continue
                for image_id, t in zip(ids, head.predict_tags(vecs, column, threshold), strict=True):
                    d = t.to_dict()
                    s.add(FashionTag(image_id=image_id, attribute=d["attribute"], value=d["value"],
                                     confidence=float(d["confidence"]), region=d.get("region", "whole"),
                                     source=d.get("source", "head")))
                    written += 1


def verify(lake: Any, collection: str) -> list[dict[str, Any]]:
    """Checks independent of the steps above: vectors, index and heads all in the rows layout."""
    from visionlake.catalog.models import Image
    from visionlake.fashion.heads import TrainedHead, heads_dir
    from visionlake.fashion.models import FashionEmbedding
    from visionlake.fashion.resync import fashion_catalog_ids
    from visionlake.fashion.tagger import MODEL_SETTING

    col = lake.collection(collection)
    record = (col.settings or {}).get(MODEL_SETTING) or {}
    dim, pooled = int(record.get("dim") or 0), int(record.get("pooled_dim") or 0)
    checks: list[dict[str, Any]] = []

    def check(what: str, found: list[Any]) -> None:
        checks.append({"check": what, "ok": not found, "found": found[:10]})

    check("the collection records the 'rows' layout", [] if record.get("layout") == "rows" else [record])
    with lake.session() as s:
        check(f"every stored vector is {dim}-d",
              s.scalars(select(FashionEmbedding.image_id).join(Image, Image.id == FashionEmbedding.image_id)
                        .where(Image.collection_id == col.id, FashionEmbedding.dim != dim)).all())
        n = s.scalar(select(func.count(FashionEmbedding.image_id)).join(Image, Image.id == FashionEmbedding.image_id)
                     .where(Image.collection_id == col.id)) or 0
    header = lake.index_header(collection, "fashion")
    check(f"the index holds {pooled}-d vectors (the pooled part)",
          [] if n == 0 or (header is not None and int(header["dim"]) == pooled) else [header and header["dim"]])
    if n:
        have = set(lake.index(collection, "fashion", pooled, "cosine").ids().tolist())
        want = fashion_catalog_ids(lake, col.id)
        check("the index holds exactly the catalog's vectors", sorted(have ^ want))
    stale = []
    folder = heads_dir(lake, collection)
    for path in sorted(folder.glob("*.joblib")) if folder.is_dir() else []:
        try:
            if int(TrainedHead.load(path).dim) != dim:
                stale.append(path.name)
        except Exception:  # noqa: BLE001 - reported as not reading rows
            stale.append(path.name)
    check(f"every trained head reads {dim}-d vectors", stale)
    return checks


__all__ = ["UPGRADE_SETTING", "RowsEmbedder", "rows_record", "upgrade_layout", "upgrading", "verify"]
