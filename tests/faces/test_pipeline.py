"""The default face pipeline: detection, landmarks, quality, embeddings, bad input, public API."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from visionlake.errors import BadInput
from visionlake.faces import compare_faces, face_distance, face_encodings, face_locations
from visionlake.faces.pipeline import DetectedFace, FacePipeline, calibrated_threshold, load_image
from visionlake.faces.quality import pose_score, sharpness_score, size_score


def test_real_face_has_box_five_landmarks_inside_and_quality(face_pipeline, lfw_image_paths):
    path = lfw_image_paths["George_W_Bush"][0]
    faces = face_pipeline.detect(load_image(path))
    assert len(faces) >= 1
    f = faces[0]
    left, top, right, bottom = f.box
    assert 0 <= left < right <= 250 and 0 <= top < bottom <= 250
    assert len(f.landmarks) == 5
    for x, y in f.landmarks:
        assert left - 2 <= x <= right + 2 and top - 2 <= y <= bottom + 2
    assert 0.3 < f.quality <= 1.0
    # LFW crops are centred on the face
    cx, cy = (left + right) / 2, (top + bottom) / 2
    assert abs(cx - 125) < 40 and abs(cy - 125) < 40


def test_blank_and_noise_images_have_no_face(face_pipeline):
    assert face_pipeline.detect(Image.new("RGB", (300, 200), (128, 128, 128))) == []
    noise = np.random.default_rng(1).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    assert face_pipeline.analyse(noise) == []
    assert face_pipeline.embed(noise, []).shape == (0, 128)


def test_same_person_is_more_similar_than_different_people(face_pipeline, lfw_image_paths):
    vec = {}
    for name, files in lfw_image_paths.items():
        vec[name] = [face_pipeline.analyse(load_image(p))[0][1] for p in files[:2]]
    for v in vec.values():
        for x in v:
            assert x.shape == (128,) and x.dtype == np.float32
            assert abs(float(np.linalg.norm(x)) - 1.0) < 1e-4
    names = list(vec)
    same = [float(vec[n][0] @ vec[n][1]) for n in names]
    diff = [float(vec[a][0] @ vec[b][1]) for a in names for b in names if a != b]
    assert min(same) > max(diff)
    thr = calibrated_threshold(face_pipeline.name, 1e-3)
    assert all(d < thr for d in diff)  # no impostor passes the FAR 1e-3 operating point
    assert float(np.mean(same)) >= thr


def test_embed_from_stored_landmarks_matches_analyse(face_pipeline, lfw_image_paths):
    img = load_image(lfw_image_paths["Colin_Powell"][0])
    (face, vec), *_ = face_pipeline.analyse(img)
    again = face_pipeline.embed(img, [DetectedFace(**{**face.to_dict(), "box": tuple(face.box),
                                                      "landmarks": [tuple(p) for p in face.landmarks]})])
    assert again.shape == (1, 128)
    assert float(again[0] @ vec) > 0.999
    crop = face_pipeline.crop(img, face, size=160)
    assert crop.size == (160, 160) and crop.mode == "RGB"


def test_onnx_backend_gives_dlib_vectors(lfw_image_paths):
    """The onnxruntime copy of dlib's network must give the same vectors as dlib itself."""
    fast = FacePipeline(backend="onnx", flip=False)
    slow = FacePipeline(backend="dlib", flip=False)
    assert fast.embedder.backend == "onnx" and slow.embedder.backend == "dlib"
    img = load_image(lfw_image_paths["Tony_Blair"][0])
    faces = fast.detect(img)
    a, b = fast.embed(img, faces), slow.embed(img, faces)
    assert np.abs(a - b).max() < 1e-4


def test_flip_averaging_changes_vector_but_keeps_identity(lfw_image_paths):
    plain = FacePipeline(flip=False)
    flip = FacePipeline(flip=True)
    img = load_image(lfw_image_paths["Tony_Blair"][1])
    faces = plain.detect(img)
    a, b = plain.embed(img, faces)[0], flip.embed(img, faces)[0]
    assert 0.9 < float(a @ b) < 0.99999


def test_jitters_are_repeatable_and_keep_identity(lfw_image_paths):
    """dlib's num_jitters, but the same template for the same photo in any pipeline and any order."""
    a_pipe, b_pipe = FacePipeline(jitters=4), FacePipeline(jitters=4)
    blair = load_image(lfw_image_paths["Tony_Blair"][1])
    other = load_image(lfw_image_paths["Serena_Williams"][0])
    faces = a_pipe.detect(blair)
    b_pipe.embed(other, b_pipe.detect(other))  # an earlier call must not change the next template
    a, b = a_pipe.embed(blair, faces)[0], b_pipe.embed(blair, faces)[0]
    assert np.array_equal(a, b)
    plain = a_pipe.embed(blair, faces, jitters=0)[0]  # per-call override
    assert 0.99 < float(a @ plain) < 0.99999
    assert float(a_pipe.embed(blair, faces, jitters=4)[0] @ a) > 0.999999
    with pytest.raises(ValueError, match="jitters"):
        a_pipe.embed(blair, faces, jitters=-1)


def test_large_photo_finds_the_same_face(face_pipeline, lfw_image_paths):
    img = load_image(lfw_image_paths["Serena_Williams"][0])
    small = face_pipeline.analyse(img)
    big_img = img.resize((1500, 1500), Image.Resampling.BICUBIC)
    big = face_pipeline.analyse(big_img)
    assert len(big) >= 1
    assert float(small[0][1] @ big[0][1]) > 0.95
    # box in original pixels of the big photo: about 6x the small one
    assert big[0][0].box[2] - big[0][0].box[0] > 4 * (small[0][0].box[2] - small[0][0].box[0])


# ------------------------------------------------------------------ bad input


def _jpeg_bytes(size=(64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 100, 50)).save(buf, "JPEG")
    return buf.getvalue()


def test_corrupt_bytes_raise_bad_input_with_message():
    with pytest.raises(BadInput, match="not an image"):
        load_image(b"this is not an image at all")
    with pytest.raises(BadInput, match="empty"):
        load_image(b"")


def test_truncated_jpeg_raises_bad_input():
    data = _jpeg_bytes((400, 300))
    with pytest.raises(BadInput, match="corrupt or truncated"):
        load_image(data[: len(data) // 2])


def test_missing_file_and_folder_raise_bad_input(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(BadInput, match="folder"):
        load_image(tmp_path)
    with pytest.raises(BadInput, match="cannot read an image"):
        load_image(12345)  # type: ignore[arg-type]


def test_too_many_pixels_refused_before_decoding(monkeypatch):
    import visionlake.faces.detect as detect

    monkeypatch.setattr(detect, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(BadInput, match="pixels"):
        load_image(_jpeg_bytes((100, 100)))


def test_exif_orientation_is_applied():
    buf = io.BytesIO()
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(buf, "JPEG", exif=exif.tobytes())
    assert load_image(buf.getvalue()).size == (20, 40)


def test_wrong_array_shape_is_bad_input(face_pipeline):
    with pytest.raises(BadInput, match="HxWx3"):
        face_pipeline.detect(np.zeros((4, 4, 4, 4), dtype=np.uint8))


def test_unknown_pack_and_missing_onnx_path_are_bad_input():
    with pytest.raises(BadInput, match="unknown face pack"):
        FacePipeline(pack="nope")
    with pytest.raises(BadInput, match="embedder_path"):
        FacePipeline(pack="onnx")


# ------------------------------------------------------------------ quality


def test_quality_factors_behave():
    assert size_score(200, 200) == 1.0 and size_score(20, 20) < 0.3
    sharp = np.zeros((64, 64), dtype=np.uint8)
    sharp[::2, ::2] = 255
    blurred = np.full((64, 64), 128, dtype=np.uint8)
    assert sharpness_score(sharp) > 0.9 > 0.1 > sharpness_score(blurred)
    frontal = [(60, 50), (40, 50), (-40, 50), (-60, 50), (0, 90)]  # dlib order, nose centred
    frontal = [(x + 100, y) for x, y in frontal]
    profile = [(x, y) for x, y in frontal[:4]] + [(150, 90)]  # nose towards one eye
    assert pose_score(frontal) > 0.95 > 0.6 > pose_score(profile)
    scrfd = [(80, 50), (120, 50), (100, 75), (85, 100), (115, 100)]
    assert pose_score(scrfd) > 0.95


# ------------------------------------------------------------------ thresholds and public API


def test_thresholds_are_stricter_at_lower_far():
    t3 = calibrated_threshold("dlib-resnet-v1", 1e-3)
    t4 = calibrated_threshold("dlib-resnet-v1", 1e-4)
    assert 0.0 < t3 < t4 < 1.0
    with pytest.raises(BadInput, match="no calibrated thresholds"):
        calibrated_threshold("some-other-pack", 1e-3)
    with pytest.raises(BadInput, match="FAR"):
        calibrated_threshold("dlib-resnet-v1", 2.0)


def test_impostor_thresholds_hold_the_far_for_plain_and_cross_pairs():
    """Calibration counts only different-person pairs, and the threshold keeps FAR at or under f."""
    from visionlake.bench.faces_thresholds import impostor_thresholds

    rng = np.random.default_rng(3)
    people = [f"p{i}" for i in range(40)]
    centres = {p: rng.standard_normal(16) for p in people}

    def templates(noise: float) -> dict[str, np.ndarray]:
        out = {}
        for p in people:
            for k in range(3):
                v = centres[p] + noise * rng.standard_normal(16)
                out[f"images/{p}/{p}_{k}.jpg"] = (v / np.linalg.norm(v)).astype(np.float32)
        return out

    plain, enrolled = templates(0.5), templates(0.3)
    same = impostor_thresholds(plain, (1e-2,))
    assert same["impostor_pairs"] == 120 * 119 // 2 - 40 * 3  # pairs within a person are left out
    cross = impostor_thresholds(enrolled, (1e-2,), against=plain)
    assert cross["impostor_pairs"] == 120 * 120 - 40 * 9
    a, b = np.stack(list(enrolled.values())), np.stack(list(plain.values()))
    who_a = np.array([k.split("/")[1] for k in enrolled])
    who_b = np.array([k.split("/")[1] for k in plain])
    scores = (a @ b.T)[who_a[:, None] != who_b[None, :]]
    assert np.mean(scores >= cross["thresholds"]["0.01"]) <= 1e-2


def test_public_api_like_face_recognition(lfw_image_paths):
    a, b = lfw_image_paths["George_W_Bush"][:2]
    other = lfw_image_paths["Colin_Powell"][0]
    locs = face_locations(str(a))
    assert len(locs) >= 1
    top, right, bottom, left = locs[0]
    assert top < bottom and left < right
    known = face_encodings(str(a))
    assert len(known) >= 1
    assert compare_faces(known, face_encodings(str(b))[0]) == [True]
    assert compare_faces(known, face_encodings(str(other))[0]) == [False]
    d = face_distance(known, face_encodings(str(b))[0])
    assert d.shape == (len(known),) and 0 <= d[0] < 1
