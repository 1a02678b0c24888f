"""With a colour head, the person mask runs once per photo per analysis pass, and answers do not change.

The pose model costs ~40 ms per photo; the model-free colour and the colour head both need the
photo's garment pixels, which the mask chooses. A counting stand-in for the pose model (no
``ai-edge-litert`` needed) records how often each photo is masked.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from visionlake.analysers.base import DecodedImage, WorkerContext
from visionlake.fashion import colour_training, person_mask
from visionlake.fashion.analyser import ColourAnalyser
from visionlake.fashion.colour import analyse_colours
from visionlake.fashion.colour_head import (
    HEAD_CANDIDATES_NO_BACKBONE,
    HEAD_PARTS_NO_BACKBONE,
    fit_colour_head,
    image_features,
)

NAVY, RED, CHARCOAL = (40, 70, 160), (200, 30, 40), (60, 60, 64)


class CountingMasker:
    """Stands in for :class:`~visionlake.fashion.person_mask.PersonMasker`: the "person" is every
    non-white pixel below the top eighth of the photo; counts calls per photo content."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def region(self, rgb: np.ndarray) -> np.ndarray | None:
        key = hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest()
        self.calls[key] = self.calls.get(key, 0) + 1
        mask = np.asarray(rgb).min(axis=2) < 235
        mask[: rgb.shape[0] // 8] = False
        return mask if mask.sum() >= 10 else None


def _photos(make_garment) -> list[Image.Image]:
    return [make_garment(NAVY, size=96, skin=True), make_garment(RED, size=96), make_garment(CHARCOAL, size=96)]


@pytest.fixture()
def head_dir(tmp_path, make_garment):
    """A collection folder holding a colour head on colour features (no backbone needed)."""
    rng = np.random.default_rng(0)
    pics, labels = [], []
    for i in range(12):
        base, fam = [(NAVY, "blue"), (RED, "red"), (CHARCOAL, "black")][i % 3]
        pics.append(make_garment(tuple(int(np.clip(c + rng.integers(-10, 11), 0, 255)) for c in base), size=96))
        labels.append(fam)
    x = image_features(pics, HEAD_PARTS_NO_BACKBONE)
    head = fit_colour_head(x, labels, folds=2, candidates={"logreg C=0.01": HEAD_CANDIDATES_NO_BACKBONE[
        "logreg C=0.01"]}, parts=HEAD_PARTS_NO_BACKBONE)
    folder = tmp_path / "c"
    head.save(colour_training.head_path(folder))
    return folder


def _before(pics: list[Image.Image], masker, head) -> list[dict]:
    """What the analyser answered before the mask was shared: each part segmenting (and masking) alone."""
    out = []
    for im in pics:
        res = analyse_colours(im, masker=masker).to_dict()
        x = image_features([im], head.features, None, masker=masker)
        res["family_model_free"] = res["family"]
        res["family"] = head.predict(x)[0]
        res["family_model"] = head.describe()["name"]
        res["family_confidence"] = round(float(head.confidence(x)[0]), 4)
        out.append({"colour": res})
    return out


def test_the_mask_runs_once_per_photo_with_a_colour_head_and_answers_are_unchanged(head_dir, make_garment,
                                                                                    monkeypatch) -> None:
    pics = _photos(make_garment)
    masker = CountingMasker()
    monkeypatch.setattr(person_mask, "load_person_masker", lambda threads=1: masker)
    analyser = ColourAnalyser()
    out = analyser.analyse([DecodedImage(f"p{i}.png", "0", im) for i, im in enumerate(pics)],
                           WorkerContext(head_dir.parent, "c", head_dir))
    assert analyser.head is not None
    assert sorted(masker.calls.values()) == [1, 1, 1]  # three photos, one mask each
    assert all(r["colour"]["person_mask"] for r in out)  # the mask was used by both parts
    assert [r["colour"]["family_model"] for r in out] == [analyser.head.describe()["name"]] * 3

    reference = CountingMasker()
    assert out == _before(pics, reference, analyser.head)
    assert sorted(reference.calls.values()) == [2, 2, 2]  # the old way masked every photo twice


def test_a_colour_analysis_pass_over_a_collection_masks_each_photo_once(lake, tmp_path, head_dir, make_garment,
                                                                        monkeypatch) -> None:
    import shutil

    from visionlake.ingest.analyse import analyse

    src = tmp_path / "src"
    src.mkdir()
    for i, im in enumerate(_photos(make_garment)):
        im.save(src / f"p{i}.png")
    lake.create_collection("shop", "fashion", settings={"analysers": ["colour"]})
    from visionlake.ingest import ingest

    ingest(lake, src, "shop", workers=0)  # without a mask and head: the model-free pixels
    shutil.copytree(head_dir / "colour", lake.collection_dir("shop") / "colour")
    masker = CountingMasker()
    monkeypatch.setattr(person_mask, "load_person_masker", lambda threads=1: masker)
    report = analyse(lake, "shop", analysers=["colour"], workers=0)
    assert report["analysed"] == 3
    assert sorted(masker.calls.values()) == [1, 1, 1]


@pytest.mark.heavy
def test_real_pose_model_runs_once_per_photo_and_answers_are_unchanged(real_model, products, head_dir,
                                                                       monkeypatch) -> None:
    """The same with mediapipe's pose model on catalogue photos of people (ai-edge-litert needed)."""
    pytest.importorskip("ai_edge_litert", reason="the person mask needs the 'person' extra (ai-edge-litert)")
    real_model("mediapipe-pose")
    real = person_mask.load_person_masker()
    assert real is not None
    calls: list[int] = []
    original = real.region

    def counted(rgb):
        calls.append(1)
        return original(rgb)

    monkeypatch.setattr(real, "region", counted)
    monkeypatch.setattr(person_mask, "load_person_masker", lambda threads=1: real)
    pics = []
    for name in ("10015.jpg", "10000.jpg", "10017.jpg"):  # a man in a T-shirt, a skirt laid flat, another
        with Image.open(products / "images" / name) as im:
            pics.append(im.convert("RGB"))
    analyser = ColourAnalyser()
    out = analyser.analyse([DecodedImage(f"p{i}.jpg", "0", im) for i, im in enumerate(pics)],
                           WorkerContext(head_dir.parent, "c", head_dir))
    assert len(calls) == len(pics)
    assert out[0]["colour"]["person_mask"] is True
    assert out == _before(pics, real, analyser.head)
