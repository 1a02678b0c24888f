"""Heads trained on a retailer's own labels (``Image.meta[label_column]``) over stored image embeddings.

Why linear heads on frozen embeddings (logistic regression on pooled vectors, a calibrated ridge on the
backbone's ``rows`` vectors): they train in seconds on a CPU, need no GPU or torch, cross-validate
honestly, and are what FashionCLIP users ask for first ("learn my article types").
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
from sqlalchemy import delete, select

from visionlake.catalog.models import Image
from visionlake.errors import BadInput, NotFound
from visionlake.fashion.onnx_tagger import UNSURE, Tag

if TYPE_CHECKING:
    from visionlake.lake import Lake

SPACE = "fashion"


@dataclass
class TrainedHead:
    """A fitted classifier for one label column, with the classes it knows."""

    column: str
    classes: list[str]
    clf: Any
    cv_accuracy: float
    samples: int
    dim: int

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        return self.clf.predict_proba(np.asarray(embeddings, dtype=np.float32))

    def predict_tags(self, embeddings: np.ndarray, attribute: str | None = None, threshold: float = 0.4
                     ) -> list[Tag]:
        """One tag per row: the most probable class, ``unsure`` below ``threshold``."""
        if embeddings.shape[1] != self.dim:
            raise BadInput(f"head {self.column!r} expects {self.dim}-d embeddings, got {embeddings.shape[1]}")
        probs = self.predict_proba(embeddings)
        out = []
        for row in probs:
            j = int(row.argmax())
            p = float(row[j])
            out.append(Tag(attribute or self.column, self.classes[j] if p >= threshold else UNSURE, p, "head"))
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        joblib.dump({"column": self.column, "classes": self.classes, "clf": self.clf,
                     "cv_accuracy": self.cv_accuracy, "samples": self.samples, "dim": self.dim}, tmp)
        os.replace(tmp, p)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainedHead:
        d = joblib.load(path)
        return cls(**d)


#: logistic-regression inverse regularisation, chosen on product ids 10000-13999 only (train on three
#: blocks of 1,000 ids, score the fourth; articleType, L2-normalised EfficientNet-Lite0 features):
#: C=1 0.798, 4 0.823, 16 0.832, 64 0.831 (scripts/select_backbone_params.py,
#: docs/benchmarks/fashion-backbone-selection.json)
HEAD_C = 16.0


def head_c(dim: int | None = None) -> float:
    """The head's C for embeddings of ``dim`` dimensions.

    The backbone's ``rows`` layout (:mod:`visionlake.fashion.backbone`) concatenates K=18 unit parts and
    scales the whole to unit length, i.e. every part by 1/sqrt(18); C x 18 gives each part the
    regularisation C=16 gives a unit vector (a logistic regression on x/s with C*s^2 is the same model),
    which is what the layout was chosen with (blocked CV on ids 10000-13999,
    ``docs/benchmarks/fashion-backbone-layout-cv.json``).
    """
    from visionlake.fashion.backbone import ROWS_PARTS, rows_dim

    if dim is not None and dim == rows_dim():
        return HEAD_C * ROWS_PARTS
    return HEAD_C


def make_classifier(c: float | None = None, dim: int | None = None, calibrate: bool = True) -> Any:
    """The head classifier every caller (train, bench) uses, so a measured setting is the shipped one.

    ``rows`` embeddings get the temperature-calibrated ridge (:mod:`visionlake.fashion.ridge_head`:
    +1.1 points articleType, +0.8 usage, lower calibration error in blocked CV on ids 10000-13999);
    pooled ones keep the logistic regression (ridge lost 0.6-1.6 points there). ``c`` forces a
    logistic regression with that C (the selection scripts' knob).
    """
    from sklearn.linear_model import LogisticRegression

    from visionlake.fashion.backbone import rows_dim
    from visionlake.fashion.ridge_head import CalibratedRidge

    if c is None and dim is not None and dim == rows_dim():
        return CalibratedRidge(calibrate=calibrate)
    return LogisticRegression(max_iter=3000, C=head_c(dim) if c is None else c)


def fit_head(embeddings: np.ndarray, labels: list[str], column: str, folds: int = 5, min_per_class: int = 2,
             seed: int = 0) -> TrainedHead:
    """Fit the head (:func:`make_classifier`) and measure stratified k-fold accuracy.

    Classes with fewer than ``min_per_class`` examples are dropped (they cannot be validated).
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x = np.asarray(embeddings, dtype=np.float32)
    y = np.asarray([str(v) for v in labels])
    if len(x) != len(y):
        raise BadInput(f"{len(x)} embeddings for {len(y)} labels")
    counts = Counter(y.tolist())
    keep = np.array([counts[v] >= min_per_class for v in y.tolist()], dtype=bool)
    x, y = x[keep], y[keep]
    classes = sorted(set(y.tolist()))
    if len(classes) < 2:
        raise BadInput(f"column {column!r} needs at least two labels with >= {min_per_class} images each; "
                       f"found {dict(counts)}")
    clf = make_classifier(dim=int(x.shape[1]))
    n_splits = int(min(folds, min(Counter(y.tolist()).values())))
    if n_splits >= 2:
        cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        # accuracy does not depend on the calibration temperature: CV skips fitting it
        scorer = make_classifier(dim=int(x.shape[1]), calibrate=False)
        acc = float(np.mean(cross_val_score(scorer, x, y, cv=cv)))
    else:
        acc = float("nan")
    clf.fit(x, y)
    return TrainedHead(column, [str(c) for c in clf.classes_], clf, acc, int(len(y)), int(x.shape[1]))


def heads_dir(lake: Lake, collection: str) -> Path:
    return lake.collection_dir(collection) / "heads"


def collection_embeddings(lake: Lake, collection: str, label_column: str | None = None
                          ) -> tuple[list[int], np.ndarray, list[str | None]]:
    """(image ids, stored fashion embeddings, labels from ``Image.meta``) of a collection.

    The vectors come from the catalog, as stored: for a ``rows`` backbone the index holds only their
    pooled part (:mod:`visionlake.fashion.index_vectors`) and heads need the whole vector.
    """
    from visionlake.fashion.models import FashionEmbedding

    col = lake.collection(collection)
    with lake.session() as s:
        rows = s.execute(select(Image.id, Image.meta, FashionEmbedding.vector)
                         .join(FashionEmbedding, FashionEmbedding.image_id == Image.id)
                         .where(Image.collection_id == col.id).order_by(Image.id)).all()
    if not rows:  # a lake from before the catalog kept vectors: its index holds them as they were made
        return _index_embeddings(lake, collection, label_column)
    widths = sorted({len(r[2]) // 4 for r in rows})
    if len(widths) > 1:  # a heads' input must be one space: say what to finish instead of a shape error
        raise BadInput(f"{collection!r} holds embeddings of {len(widths)} widths ({', '.join(map(str, widths))}-d): "
                       f"its layout upgrade is unfinished; finish it with `visionlake fashion upgrade -c {collection}`")
    ids = [r[0] for r in rows]
    metas = {r[0]: (r[1] or {}) for r in rows}
    vecs = np.vstack([np.frombuffer(r[2], dtype=np.float32) for r in rows])
    labels = [None if label_column is None else _label(metas[i].get(label_column)) for i in ids]
    return ids, vecs, labels


def _index_embeddings(lake: Lake, collection: str, label_column: str | None
                      ) -> tuple[list[int], np.ndarray, list[str | None]]:
    from visionlake.fashion.search import open_space

    col = lake.collection(collection)
    index = open_space(lake, collection)
    stored = set(index.ids().tolist())
    with lake.session() as s:
        rows = s.execute(select(Image.id, Image.meta).where(Image.collection_id == col.id).order_by(Image.id)).all()
    ids = [r[0] for r in rows if r[0] in stored]
    metas = {r[0]: (r[1] or {}) for r in rows}
    if not ids:
        from visionlake.fashion.search import no_embeddings_message

        raise NotFound(no_embeddings_message(collection))
    vecs = index.reconstruct(np.asarray(ids, dtype=np.int64))
    labels = [None if label_column is None else _label(metas[i].get(label_column)) for i in ids]
    return ids, vecs, labels


def _label(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s if s and s.lower() not in ("nan", "none", "na") else None


def train(lake: Lake, collection: str, label_column: str, folds: int = 5) -> dict[str, Any]:
    """Train, save and register a head for ``label_column``; returns the cross-validated report."""
    from visionlake.faults import crash_point

    ids, vecs, labels = collection_embeddings(lake, collection, label_column)
    keep = [i for i, lab in enumerate(labels) if lab is not None]
    if not keep:
        raise BadInput(f"no image in {collection!r} has a {label_column!r} label in its metadata")
    head = fit_head(vecs[keep], [labels[i] for i in keep], label_column, folds=folds)
    path = heads_dir(lake, collection) / f"{_safe(label_column)}.joblib"
    head.save(path)
    crash_point("fashion.train.head_saved")
    model_name = register_head(lake, collection, head, path)
    return {"collection": collection, "label_column": label_column, "model": model_name,
            "classes": len(head.classes),
            "samples": head.samples, "cv_accuracy": round(head.cv_accuracy, 4), "folds": folds,
            "path": str(path.relative_to(lake.root)), "skipped_unlabelled": len(ids) - len(keep)}


def register_head(lake: Lake, collection: str, head: TrainedHead, path: Path) -> str:
    """Make the catalog's row of a saved head describe it (replacing any older row of its column).

    Idempotent, so a run killed between saving the file and this commit is completed by registering
    the file again (``fashion upgrade`` does, for heads it finds already retrained). Returns the
    collection's model name.
    """
    from visionlake.fashion.models import FashionHead

    col = lake.collection(collection)
    model_name = str(((col.settings or {}).get("fashion_model") or {}).get("name", ""))
    with lake.session() as s:
        s.execute(delete(FashionHead).where(FashionHead.collection_id == col.id,
                                            FashionHead.label_column == head.column))
        s.add(FashionHead(collection_id=col.id, label_column=head.column, path=str(path.relative_to(lake.root)),
                          classes=head.classes, samples=head.samples, cv_accuracy=head.cv_accuracy,
                          model_name=model_name))
    return model_name


def _safe(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    if not out:
        raise BadInput(f"invalid label column {name!r}")
    return out
