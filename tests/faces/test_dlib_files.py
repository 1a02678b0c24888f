"""dlib's detector and the ONNX ResNet are derived once into the model cache and read back unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("VISIONLAKE_MODEL_CACHE", str(tmp_path / "models"))
    return tmp_path / "models" / ".derived"


def test_saved_detector_finds_what_dlibs_own_finds_and_a_damaged_copy_is_rebuilt(cache, lfw_dir):
    import dlib

    from visionlake.faces.dlib_files import frontal_face_detector

    people = ("Colin_Powell", "Tony_Blair", "Serena_Williams")
    photos = [sorted((lfw_dir / "images" / n).glob("*.jpg"))[0] for n in people]
    own = frontal_face_detector()  # dlib's own, built (and kept: the cache is empty)
    assert isinstance(own, dlib.fhog_object_detector)
    saved = sorted(cache.glob("frontal-face-hog-*.svm"))
    assert len(saved) == 1 and (cache / (saved[0].name + ".sha256")).exists()
    kept = frontal_face_detector()  # read back
    for p in photos:
        img = np.asarray(Image.open(p).convert("RGB"))
        a, b = own.run(img, 1, -0.5), kept.run(img, 1, -0.5)
        assert [str(r) for r in a[0]] == [str(r) for r in b[0]] and list(a[1]) == list(b[1]), p
    saved[0].write_bytes(b"not a detector")  # damaged (or tampered): its hash no longer matches
    again = frontal_face_detector()
    img = np.asarray(Image.open(photos[0]).convert("RGB"))
    assert list(again.run(img, 1, -0.5)[1]) == list(own.run(img, 1, -0.5)[1])
    assert saved[0].read_bytes() != b"not a detector"  # rebuilt for the next process


def test_onnx_resnet_is_built_once_then_read_and_an_unwritable_cache_only_costs_the_build(cache, tmp_path,
                                                                                         monkeypatch):
    from visionlake.faces.dlib_files import resnet_onnx_bytes

    weights = tmp_path / "net.dat"
    weights.write_bytes(b"weights")
    builds = []

    def build(path: str) -> bytes:
        builds.append(path)
        return b"onnx of " + Path(path).read_bytes()

    assert resnet_onnx_bytes(str(weights), build) == b"onnx of weights"
    assert resnet_onnx_bytes(str(weights), build) == b"onnx of weights"
    assert len(builds) == 1
    weights.write_bytes(b"other weights!")  # new weights (size, mtime): a new copy
    assert resnet_onnx_bytes(str(weights), build) == b"onnx of other weights!" and len(builds) == 2

    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("VISIONLAKE_MODEL_CACHE", str(blocker / "models"))  # cannot be created
    assert resnet_onnx_bytes(str(weights), build) == b"onnx of other weights!" and len(builds) == 3
