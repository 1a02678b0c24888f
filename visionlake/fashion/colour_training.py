"""Train a collection's colour head on its own colour labels, and find it again at ingestion.

Why per collection and not shipped: what a catalogue calls "grey" or "navy" is its own convention, and
the only labelled photos we have (the Myntra product set) are for research and evaluation, so the
project ships no head trained on them. A collection whose images carry a colour column in their
metadata (``baseColour``, or any colour names the families know) gets a head with
``visionlake fashion train-colour``; from then on the ``colour`` analyser (ingestion and
``visionlake analyse``) lets that head pick the family and records that it answered (tag source
``colour-head``); without one, or when the head needs the image backbone and it is not on this machine,
the model-free method answers (tag source ``colour``).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select

from visionlake.errors import BadInput, ModelUnavailable
from visionlake.fashion.colour import family_of_label
from visionlake.fashion.colour_head import (
    HEAD_CANDIDATES,
    HEAD_CANDIDATES_NO_BACKBONE,
    HEAD_PARTS,
    HEAD_PARTS_NO_BACKBONE,
    ColourHead,
    fit_colour_head,
    image_features,
)

if TYPE_CHECKING:
    from visionlake.lake import Lake

log = logging.getLogger(__name__)

#: Collection setting that records the trained head (what ``collections show`` and reports can print).
HEAD_SETTING = "colour_head"


def head_path(collection_dir: Path) -> Path:
    """Where a collection's colour head lives (not under ``heads/``: those are embedding heads)."""
    return Path(collection_dir) / "colour" / "head.joblib"


def load_backbone(threads: int | None = None) -> Any:
    """The image backbone a head with ``emb`` features reads (ModelUnavailable says how to fetch it)."""
    from visionlake.fashion.backbone import BackboneModel

    return BackboneModel(threads=threads)


def load_collection_head(collection_dir: Path) -> ColourHead | None:
    """The collection's trained head, or None (no head, or a damaged one: logged, model-free answers)."""
    path = head_path(collection_dir)
    if not path.is_file():
        return None
    try:
        return ColourHead.load(path)
    except ValueError as exc:
        log.warning("colour head ignored, the model-free method answers: %s", exc)
        return None


def train_colour_head(lake: Lake, collection: str, label_column: str, folds: int = 5,
                      backbone: bool | None = None) -> dict[str, Any]:
    """Fit, save and record a colour head on the images whose ``meta[label_column]`` names a colour.

    ``backbone``: None uses the image backbone when its file is present (the CV-chosen features),
    True requires it, False uses colour features only (the best colour-only candidate).
    """
    from visionlake.catalog.models import Collection, Image

    col = lake.collection(collection)
    with lake.session() as s:
        rows = s.execute(select(Image.id, Image.path, Image.meta, Image.sha256)
                         .where(Image.collection_id == col.id).order_by(Image.id)).all()
    labelled = [(r[1], fam, r[3]) for r in rows
                if (fam := family_of_label(str((r[2] or {}).get(label_column) or ""))) is not None]
    if not labelled:
        raise BadInput(f"no image in {collection!r} has a colour name in its {label_column!r} metadata "
                       "(e.g. Black, Navy Blue, Off White)")
    model = None
    if backbone is not False:
        try:
            model = load_backbone()
        except ModelUnavailable:
            if backbone:
                raise
    from visionlake.fashion.person_mask import MODEL_NAME, load_person_masker

    masker = load_person_masker()  # the same garment pixels as the analyser will see
    parts, cands = (HEAD_PARTS, HEAD_CANDIDATES) if model is not None else (HEAD_PARTS_NO_BACKBONE,
                                                                            HEAD_CANDIDATES_NO_BACKBONE)
    feats, labels, groups, missing = [], [], [], 0
    for start in range(0, len(labelled), 32):
        pics, fams, shas = [], [], []
        for path, fam, sha in labelled[start:start + 32]:
            try:
                with PILImage.open(path) as im:
                    pics.append(im.convert("RGB"))
            except OSError:  # moved or deleted since ingestion
                missing += 1
                continue
            fams.append(fam)
            shas.append(sha or hashlib.sha256(str(path).encode()).hexdigest())
        if pics:
            feats.append(image_features(pics, parts, model, masker=masker))
            labels += fams
            groups += shas
    if not labels:
        raise BadInput(f"none of the {len(labelled)} labelled images of {collection!r} could be read")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        head = fit_colour_head(np.concatenate(feats), labels, folds=folds, candidates=cands, parts=parts,
                               groups=groups, label_column=label_column)
    path = head_path(lake.collection_dir(collection))
    head.save(path)
    record = head.describe() | {"path": str(path.relative_to(lake.root)),
                                "person_mask": MODEL_NAME if masker is not None else None}
    with lake.session() as s:
        c = s.get(Collection, col.id)
        if c is not None:
            c.settings = dict(c.settings or {}) | {HEAD_SETTING: record}  # reassigned: JSON is not tracked
    return {"collection": collection, "label_column": label_column, "model": record["name"],
            "features": list(parts), "cv_accuracy": record["cv_accuracy"], "samples": head.samples,
            "classes": head.classes, "cv_table": {k: round(v, 4) for k, v in head.cv_table.items()},
            "unreadable": missing, "unlabelled": len(rows) - len(labelled), "path": record["path"],
            "person_mask": record["person_mask"]}
