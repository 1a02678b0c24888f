"""A colour-family head learned from a catalogue's colour labels (e.g. Myntra's ``baseColour``).

Why: the model-free pipeline decides a family from fixed Lab thresholds, which were tuned on one part
of one catalogue; photographers, lighting and what a catalogue *calls* "grey" or "navy" differ. Where a
catalogue has colour labels, a light model learns those conventions from:

* colour features of the same garment pixels the model-free method looks at: a weighted Lab histogram
  with the model-free family votes and mean colour (``lab``), a lightness x chroma x hue histogram
  (``polar``: hue is what separates navy from black at low chroma) and the three dominant k-means colours
  with their shares (``clusters``);
* the EfficientNet-Lite0 embedding of the whole photo (``emb``): it knows *what* is in the picture, so
  the head learns that a shoe's sole, a watch's strap or a model's jeans are not the colour the
  catalogue names. Alone it is a poor colour model (57% CV); next to the colour features it adds two
  points.

Every feature set x model (logistic regressions of several strengths, RBF SVMs, HistGradientBoosting)
was compared by 5-fold CV grouped by photo hash on ids 10000-12999 only
(``scripts/select_colour_head.py``, docs/benchmarks/fashion-colour-head-cv.json); the winner,
a standardised logistic regression (calibrated probabilities, fast) on all four parts, is what
``fashion train-colour`` and ``bench fashion`` train. Without the backbone file the best colour-only
head is used instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from visionlake.errors import BadInput
from visionlake.fashion.colour import (
    _VOTE_FAMILIES,
    ColourSettings,
    GarmentPixels,
    garment_pixels,
    pixel_families,
)

L_EDGES = np.array([0, 20, 35, 50, 65, 80, 90, 101.0])
AB_EDGES = np.array([-128, -30, -12, -4, 4, 12, 30, 128.0])


def colour_features(image: PILImage.Image | np.ndarray, settings: ColourSettings | None = None) -> np.ndarray:
    """Fixed-length colour description of the garment: Lab histogram, family votes, mean Lab and chroma."""
    s = settings or ColourSettings()
    return lab_features(garment_pixels(image, s), s)


def lab_features(g: GarmentPixels, s: ColourSettings | None = None) -> np.ndarray:
    """Lab histogram, family votes, mean Lab and chroma of already segmented garment pixels."""
    s = s or ColourSettings()
    px, wt = g.lab, g.weight / max(g.weight.sum(), 1e-12)
    li = np.clip(np.digitize(px[:, 0], L_EDGES) - 1, 0, len(L_EDGES) - 2)
    ai = np.clip(np.digitize(px[:, 1], AB_EDGES) - 1, 0, len(AB_EDGES) - 2)
    bi = np.clip(np.digitize(px[:, 2], AB_EDGES) - 1, 0, len(AB_EDGES) - 2)
    nl, na = len(L_EDGES) - 1, len(AB_EDGES) - 1
    hist = np.bincount((li * na + ai) * na + bi, weights=wt, minlength=nl * na * na)
    votes = np.bincount(pixel_families(px, s), weights=wt, minlength=len(_VOTE_FAMILIES))
    mean = (px * wt[:, None]).sum(0)
    chroma = np.hypot(px[:, 1], px[:, 2])
    extra = [mean[0] / 100, mean[1] / 50, mean[2] / 50, float((chroma * wt).sum()) / 50,
             float(np.sqrt(((px[:, 0] - mean[0]) ** 2 * wt).sum())) / 50]
    # square roots: the Hellinger embedding of histograms, so that a linear model compares them sensibly
    return np.concatenate([np.sqrt(hist), np.sqrt(votes), extra]).astype(np.float32)


POLAR_L = np.array([0, 25, 40, 55, 70, 85, 101.0])
POLAR_C = np.array([0, 5, 10, 20, 35, 200.0])
HUE_BINS = 12


def polar_features(g: GarmentPixels) -> np.ndarray:
    """Lightness x chroma x hue histogram (LCh): hue is what separates navy from black at low chroma,
    and chroma what separates grey from a washed-out colour, which the Cartesian a*b* grid cuts coarsely."""
    px, wt = g.lab, g.weight / max(g.weight.sum(), 1e-12)
    li = np.clip(np.digitize(px[:, 0], POLAR_L) - 1, 0, len(POLAR_L) - 2)
    chroma = np.hypot(px[:, 1], px[:, 2])
    ci = np.clip(np.digitize(chroma, POLAR_C) - 1, 0, len(POLAR_C) - 2)
    hue = (np.degrees(np.arctan2(px[:, 2], px[:, 1])) % 360) / (360 / HUE_BINS)
    hi = np.clip(hue.astype(np.intp), 0, HUE_BINS - 1)
    nl, nc = len(POLAR_L) - 1, len(POLAR_C) - 1
    hist = np.bincount((li * nc + ci) * HUE_BINS + hi, weights=wt, minlength=nl * nc * HUE_BINS)
    return np.sqrt(hist).astype(np.float32)


def cluster_features(g: GarmentPixels, k: int = 3) -> np.ndarray:
    """The ``k`` dominant colours (weighted k-means in Lab), largest first: L, a, b, chroma, share each;
    plus the foreground and skin shares (how much of the photo the garment is)."""
    from visionlake.fashion.colour import _kmeans

    px, wt = g.lab, g.weight
    centres, assign = _kmeans(px, wt, k, np.random.default_rng(0))
    shares = np.bincount(assign, weights=wt, minlength=len(centres)) / max(float(wt.sum()), 1e-12)
    order = np.argsort(-shares)
    out = np.zeros((k, 5), dtype=np.float64)
    for r, j in enumerate(order[:k]):
        L, a, b = centres[j]
        out[r] = [L / 100, a / 50, b / 50, np.hypot(a, b) / 50, shares[j]]
    return np.concatenate([out.ravel(), [g.foreground, g.skin_share]]).astype(np.float32)


#: Candidates :func:`fit_colour_head` compares by CV: name -> (kind, parameters). Kept few and light:
#: 5 candidates x 5 folds + one refit on ~2,500 photos took about two minutes of the bench on one core.
CANDIDATES: dict[str, tuple[str, dict[str, float]]] = {
    "logreg C=0.01": ("logreg", {"C": 0.01}),
    "logreg C=0.1": ("logreg", {"C": 0.1}),
    "logreg C=1": ("logreg", {"C": 1.0}),
    "hgb lr=0.1 leaves=15 iter=100": ("hgb", {"learning_rate": 0.1, "max_leaf_nodes": 15, "max_iter": 100}),
    "hgb lr=0.05 leaves=7 iter=200 l2=1": ("hgb", {"learning_rate": 0.05, "max_leaf_nodes": 7, "max_iter": 200,
                                                   "l2_regularization": 1.0}),
}


#: Feature parts a head can be built on: ``lab``/``polar``/``clusters`` come from the garment pixels
#: (:func:`lab_features`, :func:`polar_features`, :func:`cluster_features`), ``emb`` is the L2-normalised
#: EfficientNet-Lite0 embedding of the whole photo (it knows *what* the garment is: a shoe's sole or a
#: shirt's collar is not the colour the catalogue names).
FEATURE_PARTS: tuple[str, ...] = ("lab", "polar", "clusters", "emb")

_COLOUR = ("lab", "polar", "clusters")
_ALL = ("lab", "polar", "clusters", "emb")

#: Everything ``scripts/select_colour_head.py select`` compared by CV on ids 10000-12999:
#: name -> (feature parts, kind, parameters).
SELECTION_CANDIDATES: dict[str, tuple[tuple[str, ...], str, dict[str, float]]] = {
    "lab | logreg C=0.01": (("lab",), "logreg", {"C": 0.01}),
    "lab | hgb lr=0.1 leaves=15 iter=100": (("lab",), "hgb", {"learning_rate": 0.1, "max_leaf_nodes": 15,
                                                               "max_iter": 100}),
    "lab+polar+clusters | logreg C=0.01": (_COLOUR, "logreg", {"C": 0.01}),
    "lab+polar+clusters | logreg C=0.1": (_COLOUR, "logreg", {"C": 0.1}),
    "lab+polar+clusters | logreg C=0.003": (_COLOUR, "logreg", {"C": 0.003}),
    "lab+polar+clusters | logreg C=0.001": (_COLOUR, "logreg", {"C": 0.001}),
    "emb | logreg C=0.01": (("emb",), "logreg", {"C": 0.01}),
    "emb | logreg C=0.1": (("emb",), "logreg", {"C": 0.1}),
    "lab+emb | logreg C=0.01": (("lab", "emb"), "logreg", {"C": 0.01}),
    "lab+polar+clusters+emb | logreg C=0.001": (_ALL, "logreg", {"C": 0.001}),
    "lab+polar+clusters+emb | logreg C=0.003": (_ALL, "logreg", {"C": 0.003}),
    "lab+polar+clusters+emb | logreg C=0.01": (_ALL, "logreg", {"C": 0.01}),
    "lab+polar+clusters+emb | logreg C=0.03": (_ALL, "logreg", {"C": 0.03}),
    "lab+polar+clusters+emb | svm rbf C=1": (_ALL, "svm", {"C": 1.0}),
    "lab+polar+clusters+emb | svm rbf C=10": (_ALL, "svm", {"C": 10.0}),
    "lab+polar+clusters+emb | pca128 hgb lr=0.1 leaves=15 iter=100": (_ALL, "pca_hgb", {
        "learning_rate": 0.1, "max_leaf_nodes": 15, "max_iter": 100}),
}


#: What a head is trained on (``fashion train-colour``, ``bench fashion``): the CV winner on ids 10000-12999
#: (all four feature parts, logistic regression C=0.003: 72.5% grouped 5-fold CV; the colour-only HGB head
#: it replaces: 69.6%; docs/benchmarks/fashion-colour-head-cv.json) and its two neighbours in C; a second
#: CV on the labels at hand picks among these three.
HEAD_PARTS: tuple[str, ...] = _ALL
HEAD_CANDIDATES: dict[str, tuple[str, dict[str, float]]] = {
    "logreg C=0.003": ("logreg", {"C": 0.003}),
    "logreg C=0.001": ("logreg", {"C": 0.001}),
    "logreg C=0.01": ("logreg", {"C": 0.01}),
}
#: Without the image backbone on the machine: the best colour-only features (70.3% CV) and candidates.
HEAD_PARTS_NO_BACKBONE: tuple[str, ...] = _COLOUR
HEAD_CANDIDATES_NO_BACKBONE: dict[str, tuple[str, dict[str, float]]] = {
    "logreg C=0.01": ("logreg", {"C": 0.01}),
    "logreg C=0.003": ("logreg", {"C": 0.003}),
}


def feature_matrix(parts: dict[str, np.ndarray], names: tuple[str, ...] | list[str]) -> np.ndarray:
    """Rows of the named feature parts side by side; ``emb`` is L2-normalised first."""
    cols = []
    for name in names:
        x = np.atleast_2d(np.asarray(parts[name], dtype=np.float32))
        if name == "emb":
            n = np.linalg.norm(x, axis=1, keepdims=True)
            x = x / np.where(n == 0, 1, n)
        cols.append(x)
    return np.concatenate(cols, axis=1)


def make_candidate(kind: str, params: dict[str, float]) -> object:
    """An unfitted scikit-learn model for one candidate (standardised logistic regression, or HGB trees)."""
    if kind == "svm":
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        return make_pipeline(StandardScaler(), SVC(C=params["C"], kernel="rbf", gamma="scale"))
    if kind == "pca_hgb":
        from sklearn.decomposition import PCA
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), PCA(128, random_state=0), make_candidate("hgb", params))
    if kind == "logreg":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(C=params["C"], max_iter=2000))
    if kind == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        # no early stopping: it would carve its own random validation split out of each CV fold
        return HistGradientBoostingClassifier(early_stopping=False, random_state=0,
                                              **{k: (int(v) if k in ("max_leaf_nodes", "max_iter") else v)
                                                 for k, v in params.items()})
    raise ValueError(f"unknown colour head kind: {kind}")


def image_features(images: Sequence[PILImage.Image], parts: Sequence[str], backbone: Any = None,
                   settings: ColourSettings | None = None, masker: Any = None,
                   garments: Sequence[GarmentPixels] | None = None) -> np.ndarray:
    """The head's input rows for ``images``: the named :data:`FEATURE_PARTS`, segmenting each garment once.

    ``backbone`` (a :class:`~visionlake.fashion.backbone.BackboneModel`) is needed only for ``emb``;
    ``masker`` (a :class:`~visionlake.fashion.person_mask.PersonMasker`) picks the garment pixels of
    photos of people, as at analysis. ``garments``: the photos' garment pixels when the caller already
    segmented them (the colour analyser: the model-free family and the head share one segmentation and
    one pose-model run per photo); then ``masker`` is not used.
    """
    s = settings or ColourSettings()
    unknown = [p for p in parts if p not in FEATURE_PARTS]
    if unknown:
        raise ValueError(f"unknown colour feature parts: {unknown}")
    got: dict[str, list[np.ndarray]] = {p: [] for p in parts}
    if garments is not None and len(garments) != len(images):
        raise ValueError(f"{len(garments)} garment segmentations for {len(images)} images")
    if any(p != "emb" for p in parts):
        for i, im in enumerate(images):
            g = garments[i] if garments is not None else garment_pixels(im, s, masker)
            if "lab" in got:
                got["lab"].append(lab_features(g, s))
            if "polar" in got:
                got["polar"].append(polar_features(g))
            if "clusters" in got:
                got["clusters"].append(cluster_features(g))
    if "emb" in got:
        if backbone is None:
            raise ValueError("the 'emb' feature part needs the image backbone")
        got["emb"] = list(backbone.features(list(images))[0]) if len(images) else []
    return feature_matrix({p: np.asarray(v, np.float32).reshape(len(images), -1) for p, v in got.items()},
                          list(parts))


#: Version of what :meth:`ColourHead.save` writes; :meth:`ColourHead.load` refuses other versions.
HEAD_FORMAT = 1


@dataclass
class ColourHead:
    """The CV-chosen model over :func:`image_features` of ``features``, with the CV table that chose it."""

    model: object
    classes: list[str]
    cv_accuracy: float
    name: str
    cv_table: dict[str, float]
    features: tuple[str, ...] = ("lab",)
    samples: int = 0
    label_column: str | None = None

    @property
    def needs_backbone(self) -> bool:
        """True when the head reads the image backbone's embedding (its file must be on this machine)."""
        return "emb" in self.features

    def predict(self, features: np.ndarray) -> list[str]:
        """Family of each row of ``features``."""
        return [str(c) for c in self.model.predict(np.atleast_2d(features))]  # type: ignore[attr-defined]

    def confidence(self, features: np.ndarray) -> np.ndarray:
        """Probability of the predicted family per row (NaN when the model gives no probabilities)."""
        x = np.atleast_2d(features)
        if hasattr(self.model, "predict_proba"):
            try:
                return np.asarray(self.model.predict_proba(x)).max(axis=1)  # type: ignore[attr-defined]
            except AttributeError:  # SVC without probability=True
                pass
        return np.full(len(x), np.nan)

    def describe(self) -> dict[str, Any]:
        """What ingestion records as the model that answered (JSON-safe)."""
        return {"name": f"colour-head {'+'.join(self.features)} | {self.name}", "features": list(self.features),
                "cv_accuracy": round(float(self.cv_accuracy), 4), "samples": int(self.samples),
                "label_column": self.label_column, "classes": list(self.classes)}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write through the lake's one atomic writer (fsync + rename, mode 0600), so a kill leaves the
        old head or the new one (joblib: scikit-learn models have no portable format)."""
        import io

        import joblib

        from visionlake.lakefiles import store_bytes

        p = Path(path)
        buf = io.BytesIO()
        joblib.dump({"format": HEAD_FORMAT, "model": self.model, "classes": self.classes,
                     "cv_accuracy": self.cv_accuracy, "name": self.name, "cv_table": self.cv_table,
                     "features": list(self.features), "samples": self.samples,
                     "label_column": self.label_column}, buf)
        store_bytes(p.parent, p.name, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ColourHead:
        """Read a saved head; a damaged file or another format version raises ``ValueError``."""
        import joblib

        try:
            d = joblib.load(path)
        except Exception as exc:
            raise ValueError(f"cannot read colour head {path}: {exc}") from None
        if not isinstance(d, dict) or d.get("format") != HEAD_FORMAT:
            raise ValueError(f"{path} is not a colour head of format {HEAD_FORMAT}")
        d.pop("format")
        d["features"] = tuple(d["features"])
        return cls(**d)


def fit_colour_head(features: np.ndarray, labels: list[str], folds: int = 5,
                    candidates: dict[str, tuple[str, dict[str, float]]] | None = None,
                    parts: tuple[str, ...] = ("lab",), groups: Sequence[str] | None = None,
                    label_column: str | None = None) -> ColourHead:
    """Fit on labelled garments; the model is the candidate with the best stratified ``folds``-fold CV
    accuracy on these rows only (never on a test part), then refitted on all of them.

    ``groups`` (e.g. photo hashes) keeps identical photos on one side of every fold. Ties go to the
    candidate listed first (the simpler one).
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_score

    cands = candidates or CANDIDATES
    y = np.asarray(labels)
    # families with too few examples cannot be cross-validated: they are left to the model-free method
    values, counts = np.unique(y, return_counts=True)
    keep = np.isin(y, values[counts >= folds])
    X, y = np.asarray(features)[keep], y[keep]
    if len(set(y.tolist())) < 2:
        raise BadInput(f"a colour head needs at least two colour families with >= {folds} labelled photos "
                       f"each; found {dict(zip(values.tolist(), counts.tolist(), strict=True))}")
    g = None if groups is None else np.asarray(groups)[keep]
    cv = (StratifiedKFold(folds, shuffle=True, random_state=0) if g is None
          else StratifiedGroupKFold(folds, shuffle=True, random_state=0))
    table = {name: float(cross_val_score(make_candidate(*spec), X, y, cv=cv, groups=g).mean())
             for name, spec in cands.items()}
    order = list(cands)
    best = max(order, key=lambda n: (table[n], -order.index(n)))
    model = make_candidate(*cands[best])
    model.fit(X, y)  # type: ignore[attr-defined]
    return ColourHead(model, sorted(set(y.tolist())), table[best], best, table, tuple(parts), int(len(y)),
                      label_column)
