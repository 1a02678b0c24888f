"""A colour-family head learned from a catalogue's colour labels (e.g. Myntra's ``baseColour``).

Why: the model-free pipeline decides a family from fixed Lab thresholds, which were tuned on one part
of one catalogue; photographers, lighting and what a catalogue *calls* "grey" or "navy" differ. Where a
catalogue has colour labels, a light model on colour features of the same garment pixels learns those
conventions: a weighted Lab histogram (where the garment's pixels fall in lightness x a* x b*), the
model-free family votes and the mean colour, into a light classifier: multinomial logistic regressions
of several strengths and small gradient-boosted tree ensembles (non-linear: "navy vs black" is a corner
of the histogram, not a direction) compete, and the one with the best cross-validated accuracy on the
training ids only is refitted on all of them. No deep model; the whole comparison adds about two
minutes to `bench fashion` on a shared 2-core machine (~2,500 photos).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage

from visionlake.fashion.colour import (
    _VOTE_FAMILIES,
    ColourSettings,
    garment_pixels,
    pixel_families,
)

L_EDGES = np.array([0, 20, 35, 50, 65, 80, 90, 101.0])
AB_EDGES = np.array([-128, -30, -12, -4, 4, 12, 30, 128.0])


def colour_features(image: PILImage.Image | np.ndarray, settings: ColourSettings | None = None) -> np.ndarray:
    """Fixed-length colour description of the garment: Lab histogram, family votes, mean Lab and chroma."""
    s = settings or ColourSettings()
    g = garment_pixels(image, s)
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


def make_candidate(kind: str, params: dict[str, float]) -> object:
    """An unfitted scikit-learn model for one candidate (standardised logistic regression, or HGB trees)."""
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


@dataclass
class ColourHead:
    """The CV-chosen model over :func:`colour_features`, with the CV table that chose it."""

    model: object
    classes: list[str]
    cv_accuracy: float
    name: str
    cv_table: dict[str, float]

    def predict(self, features: np.ndarray) -> list[str]:
        """Family of each row of ``features``."""
        return [str(c) for c in self.model.predict(np.atleast_2d(features))]  # type: ignore[attr-defined]


def fit_colour_head(features: np.ndarray, labels: list[str], folds: int = 5,
                    candidates: dict[str, tuple[str, dict[str, float]]] | None = None) -> ColourHead:
    """Fit on labelled garments; the model is the candidate with the best stratified ``folds``-fold CV
    accuracy on these rows only (never on a test part), then refitted on all of them.

    Ties go to the candidate listed first (the simpler one: logistic regressions are listed first).
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    cands = candidates or CANDIDATES
    y = np.asarray(labels)
    # families with too few examples cannot be cross-validated: they are left to the model-free method
    values, counts = np.unique(y, return_counts=True)
    keep = np.isin(y, values[counts >= folds])
    X, y = np.asarray(features)[keep], y[keep]

    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    table = {name: float(cross_val_score(make_candidate(*spec), X, y, cv=cv).mean())
             for name, spec in cands.items()}
    order = list(cands)
    best = max(order, key=lambda n: (table[n], -order.index(n)))
    model = make_candidate(*cands[best])
    model.fit(X, y)  # type: ignore[attr-defined]
    return ColourHead(model, sorted(set(y)), table[best], best, table)
