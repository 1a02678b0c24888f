"""A colour-family head learned from a catalogue's colour labels (e.g. Myntra's ``baseColour``).

Why: the model-free pipeline decides a family from fixed Lab thresholds, which were tuned on one part
of one catalogue; photographers, lighting and what a catalogue *calls* "grey" or "navy" differ. Where a
catalogue has colour labels, a light model on colour features of the same garment pixels learns those
conventions: a weighted Lab histogram (where the garment's pixels fall in lightness x a* x b*), the
model-free family votes and the mean colour, into a multinomial logistic regression whose strength is
chosen by cross-validation on the training ids only. No deep model, trains in seconds.
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


@dataclass
class ColourHead:
    """Standardiser + logistic regression over :func:`colour_features`, with its CV accuracy."""

    model: object
    classes: list[str]
    cv_accuracy: float
    C: float

    def predict(self, features: np.ndarray) -> list[str]:
        """Family of each row of ``features``."""
        return [str(c) for c in self.model.predict(np.atleast_2d(features))]  # type: ignore[attr-defined]


def fit_colour_head(features: np.ndarray, labels: list[str], folds: int = 5,
                    grid: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)) -> ColourHead:
    """Fit on labelled garments; ``C`` chosen by stratified CV on these rows only (never on a test part)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels)
    # families with too few examples cannot be cross-validated: they are left to the model-free method
    values, counts = np.unique(y, return_counts=True)
    keep = np.isin(y, values[counts >= folds])
    X, y = np.asarray(features)[keep], y[keep]

    def make(c: float):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))

    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    scores = {c: float(cross_val_score(make(c), X, y, cv=cv).mean()) for c in grid}
    best = max(grid, key=lambda c: (scores[c], -c))
    model = make(best).fit(X, y)
    return ColourHead(model, sorted(set(y)), scores[best], best)
