"""The calibrated ridge head of ``rows`` embeddings: right classes, honest probabilities, saved and loaded."""

from __future__ import annotations

import numpy as np
import pytest

from visionlake.fashion.backbone import rows_dim
from visionlake.fashion.heads import TrainedHead, fit_head, make_classifier
from visionlake.fashion.ridge_head import MAX_TEMPERATURE, CalibratedRidge


def _blobs(n_per: int, classes: int, dim: int, spread: float, seed: int, draw: int = 0
           ) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around ``classes`` random centres (fixed by ``seed``); ``draw`` picks the sample;
    ``spread`` sets how much the classes overlap."""
    centres = np.random.default_rng(seed).normal(size=(classes, dim))
    rng = np.random.default_rng([seed, draw])
    x = np.concatenate([c + spread * rng.normal(size=(n_per, dim)) for c in centres])
    y = np.repeat([f"class{i}" for i in range(classes)], n_per)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def _ece(p: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    conf = p.max(axis=1)
    edges = np.linspace(0, 1, bins + 1)
    return float(sum(((conf > lo) & (conf <= hi)).mean() * abs(correct[(conf > lo) & (conf <= hi)].mean()
                                                                 - conf[(conf > lo) & (conf <= hi)].mean())
                     for lo, hi in zip(edges[:-1], edges[1:], strict=True) if ((conf > lo) & (conf <= hi)).any()))


def test_rows_embeddings_get_the_calibrated_ridge_and_pooled_ones_the_logistic_regression():
    assert isinstance(make_classifier(dim=rows_dim()), CalibratedRidge)
    assert type(make_classifier(dim=1280)).__name__ == "LogisticRegression"
    assert type(make_classifier(c=4.0, dim=rows_dim())).__name__ == "LogisticRegression"


SPREAD = 2.6


def test_probabilities_are_calibrated_on_overlapping_classes_where_raw_scores_are_not():
    # overlapping classes: a good head is right ~70-90% of the time and should say so
    x, y = _blobs(100, 4, 64, spread=SPREAD, seed=1)
    xt, yt = _blobs(200, 4, 64, spread=SPREAD, seed=1, draw=1)  # new photos of the same classes
    head = CalibratedRidge().fit(x, y)
    raw = CalibratedRidge(calibrate=False).fit(x, y)
    p, p_raw = head.predict_proba(xt), raw.predict_proba(xt)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert (head.predict(xt) == raw.predict(xt)).all()  # the temperature never changes the answer
    correct = head.predict(xt) == yt
    assert 0.6 < correct.mean() < 0.95
    assert 1.5 < head.temperature_ < MAX_TEMPERATURE  # ridge scores (~[-1, 1]) are far too flat as logits
    assert _ece(p, correct) < 0.08
    assert _ece(p, correct) < _ece(p_raw, correct) / 2


def test_two_classes_work_and_agree_with_the_sign_of_the_score():
    x, y = _blobs(40, 2, 16, spread=0.8, seed=3)
    head = CalibratedRidge().fit(x, y)
    p = head.predict_proba(x)
    assert p.shape == (80, 2)
    assert (head.classes_[p.argmax(axis=1)] == head.predict(x)).all()
    assert (head.predict(x) == y).mean() > 0.9


def test_a_few_separable_photos_do_not_make_the_head_certain_of_everything():
    x, y = _blobs(4, 3, 256, spread=0.3, seed=6)
    head = CalibratedRidge(folds=2).fit(x, y)
    assert head.temperature_ <= MAX_TEMPERATURE
    p = head.predict_proba(np.full((1, 256), 1 / 16, dtype=np.float32))  # a photo like none of them
    assert p.max() < 0.99


def test_a_class_too_rare_to_fold_leaves_the_temperature_at_one():
    x, y = _blobs(10, 3, 16, spread=0.5, seed=4)
    y = y.copy()
    y[0] = "lonely"
    head = CalibratedRidge().fit(x, y)
    assert head.temperature_ == 1.0
    assert "lonely" in head.classes_


def test_fit_head_on_rows_vectors_reports_cv_and_saves_a_head_that_tags_after_loading(tmp_path):
    x, y = _blobs(30, 3, rows_dim(), spread=0.9, seed=5)
    head = fit_head(x, y.tolist(), "articleType", folds=3)
    assert isinstance(head.clf, CalibratedRidge) and head.clf.temperature_ != 1.0
    assert 0.9 <= head.cv_accuracy <= 1.0
    head.save(tmp_path / "h.joblib")
    back = TrainedHead.load(tmp_path / "h.joblib")
    tags = back.predict_tags(x[:6])
    assert [t.value for t in tags] == y[:6].tolist()
    with pytest.raises(Exception, match="expects"):
        back.predict_tags(x[:2, :1280])
