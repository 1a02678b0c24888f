"""Face analyser for ingestion: detect, align, embed every face of every image of a faces collection.

``analyse`` runs in worker processes (the pipeline is built once per worker in ``prepare``) and
writes the aligned crops, which are content-addressed so that a retried image rewrites the same
files. ``persist`` runs in the main process inside the image's transaction: face rows with the
template encrypted by the lake key, then the vectors go into the collection's encrypted index.
``finalize`` saves the index; if the process dies between a catalog commit and that save,
:func:`visionlake.faces.sync.sync_index` (run by ``finalize`` and by every gallery call whose
counts disagree) restores the index from the catalog.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from visionlake.analysers.base import Analyser, DecodedImage, WorkerContext
from visionlake.faces.models import Face
from visionlake.faces.rows import face_record, face_row, record_vector
from visionlake.faces.sync import check_pack, collection_dim, face_index, index_meta, sync_index
from visionlake.lakefiles import store_jpeg

#: JPEG quality of the stored aligned crops (small: they are for review screens, not re-embedding).
CROP_QUALITY = 90


def crop_relpath(collection: str, sha256: str, i: int) -> str:
    """Where the i-th face crop of an image lives, relative to the lake root."""
    return f"collections/{collection}/crops/{sha256[:2]}/{sha256}_{i}.jpg"


def save_crop(lake_root: Path, rel: str, crop: Any) -> None:
    """Write a crop through the lake's one atomic writer (a crash never leaves half a JPEG)."""
    store_jpeg(lake_root, rel, crop.convert("RGB"), quality=CROP_QUALITY)


def face_records(pipeline: Any, image: Any, lake_root: Path, collection: str, sha256: str,
                 crop_size: int = 160, found: list[tuple[Any, np.ndarray]] | None = None) -> list[dict[str, Any]]:
    """Detect + embed + save crops for one image; the picklable per-face dicts ``persist`` expects.

    The template travels as float32 bytes between processes only; it is encrypted before it is
    written anywhere. ``found`` is the pipeline's ``analyse`` result when the caller batched it.
    """
    out = []
    for i, (face, vec) in enumerate(pipeline.analyse(image) if found is None else found):
        rel = crop_relpath(collection, sha256, i)
        save_crop(lake_root, rel, pipeline.crop(image, face, size=crop_size))
        out.append(face_record(face, vec, rel))
    return out


def _centre(box: Any) -> tuple[float, float]:
    return (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0


def _inside(p: tuple[float, float], box: Any) -> bool:
    return box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]


def carry_identities(old: list[Face], new: list[dict[str, Any]]) -> list[tuple[int | None, int | None]]:
    """(person_id, group_id) for each new face: those of the old face of the same image it re-finds.

    Why centres, not IoU: detectors draw boxes differently (dlib's HOG box is tight around eyes and
    mouth, SCRFD's includes the forehead), so after a pack switch the same face can overlap its old
    box by less than half. Two boxes are the same face when each one's centre lies inside the other;
    among several, the nearest centres pair up first, each old face at most once.
    """
    out: list[tuple[int | None, int | None]] = [(None, None)] * len(new)
    pairs = []
    for i, f in enumerate(new):
        for j, o in enumerate(old):
            if o.person_id is None and o.group_id is None:
                continue
            cn, co = _centre(f["box"]), _centre(o.box)
            if _inside(cn, o.box) and _inside(co, f["box"]):
                pairs.append(((cn[0] - co[0]) ** 2 + (cn[1] - co[1]) ** 2, i, j))
    used_new: set[int] = set()
    used_old: set[int] = set()
    for _, i, j in sorted(pairs):
        if i in used_new or j in used_old:
            continue
        used_new.add(i)
        used_old.add(j)
        out[i] = (old[j].person_id, old[j].group_id)
    return out


class FaceAnalyser(Analyser):
    """Per image: every face with box, 5 landmarks, quality, aligned crop and encrypted template."""

    name = "faces"

    def __init__(self, pack: str = "dlib", detector: str = "hog", min_quality: float = 0.0,
                 crop_size: int = 160, **opts: Any) -> None:
        self.pack = pack
        self.detector = detector
        self.min_quality = float(min_quality)
        self.crop_size = int(crop_size)
        self.opts = opts
        self._pipeline: Any = None
        self._pending = 0
        self._checked: set[tuple[int, str]] = set()

    def __getstate__(self) -> dict[str, Any]:
        # the pipeline holds native models: each worker builds its own in ``prepare``
        state = dict(self.__dict__)
        state["_pipeline"] = None
        return state

    @property
    def pipeline(self) -> Any:
        if self._pipeline is None:
            from visionlake.faces.pipeline import FacePipeline

            self._pipeline = FacePipeline(pack=self.pack, detector=self.detector, **self.opts)
        return self._pipeline

    def check_lake(self, lake: Any) -> None:
        """Before a run: a non-commercial pack needs the lake's recorded licence acceptance."""
        from visionlake.faces.collection_pack import require_licence

        require_licence(lake, self.pack)

    def prepare(self, ctx: WorkerContext) -> None:
        _ = self.pipeline

    def analyse(self, images: list[DecodedImage], ctx: WorkerContext) -> list[dict[str, Any]]:
        pipe = self.pipeline
        results = []
        # every face of the batch goes through the embedder in one call
        many = pipe.analyse_many([item.image for item in images]) if hasattr(pipe, "analyse_many") else None
        for k, item in enumerate(images):
            faces = face_records(pipe, item.image, ctx.lake_root, ctx.collection, item.sha256, self.crop_size,
                                 found=None if many is None else many[k])
            faces = [f for f in faces if f["quality"] >= self.min_quality]
            results.append({"pack": pipe.name, "dim": int(pipe.dim), "faces": faces})
        return results

    def persist(self, lake, session, collection, image_id, result) -> None:  # type: ignore[override]
        faces = result.get("faces") or []
        if not faces:
            return
        if (collection.id, result["pack"]) not in self._checked:
            from visionlake.faces.collection_pack import require_licence

            require_licence(lake, self.pack)
            check_pack(lake, collection.id, collection.name, result["pack"])
            self._checked.add((collection.id, result["pack"]))
        # a re-analysed image replaces its faces instead of duplicating them (identities carried over)
        old = session.query(Face).filter(Face.image_id == image_id).all()
        carried = carry_identities(old, faces)
        for row in old:
            session.delete(row)
        rows = []
        vecs = []
        for f, (person_id, group_id) in zip(faces, carried, strict=True):
            row = face_row(lake.cipher, collection.id, image_id, f, result["pack"], person_id=person_id)
            row.group_id = group_id
            session.add(row)
            rows.append(row)
            vecs.append(record_vector(f))
        session.flush()  # ids for the index
        index = face_index(lake, collection.name, int(result["dim"]))
        if old:
            index.remove([r.id for r in old])
        known = [k for k, r in enumerate(rows) if r.person_id is not None]
        unknown = [k for k, r in enumerate(rows) if r.person_id is None]
        mat = np.vstack(vecs)
        if unknown:
            index.add([rows[k].id for k in unknown], mat[unknown], None)
        if known:
            index.add([rows[k].id for k in known], mat[known], [index_meta(rows[k].person_id) for k in known])
        self._pending += len(rows)

    def finalize(self, lake, collection) -> None:  # type: ignore[override]
        """Save the index, after reconciling it with what the catalog actually committed."""
        sync_index(lake, collection.name, save=False)
        dim = collection_dim(lake, collection.id)
        if dim is not None:
            face_index(lake, collection.name, dim).save()
        self._pending = 0


__all__ = ["FaceAnalyser", "carry_identities", "crop_relpath", "face_records", "index_meta", "save_crop"]
