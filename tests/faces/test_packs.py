"""Face packs: SCRFD decoding, the pack protocol, the real arcface-s models, licence acceptance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionlake.errors import BadInput
from visionlake.faces.collection_pack import (
    LicenceNotAccepted,
    accept_licence,
    pack_of,
    require_licence,
    set_collection_pack,
)
from visionlake.faces.pipeline import FacePipeline, load_image
from visionlake.faces.protocols import Detector, Embedder, Pipeline
from visionlake.faces.scrfd import ScrfdDetector, anchor_centres

HERE = Path(__file__).parent


# ------------------------------------------------------------------ SCRFD decoding (no model file)
class _Out:
    def __init__(self, name: str) -> None:
        self.name = name


class FakeScrfdSession:
    """Answers like SCRFD for a 64x64 input: one face at stride 16 (row 1, col 2, anchor 1), a weaker
    duplicate on anchor 0 of the same cell (NMS removes it), and a score below threshold at stride 8."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, ...]] = []

    def get_inputs(self):
        return [_Out("input.1")]

    def get_outputs(self):
        return [_Out(f"{k}_{s}") for k in ("score", "bbox", "kps") for s in (8, 16, 32)]

    def run(self, names, feeds):
        blob = feeds["input.1"]
        self.seen.append(blob.shape)
        h, w = blob.shape[2:]
        out = {}
        for s in (8, 16, 32):
            n = (h // s) * (w // s) * 2
            score, bbox, kps = np.zeros((1, n, 1), np.float32), np.zeros((1, n, 4), np.float32), \
                np.zeros((1, n, 10), np.float32)
            if s == 16:
                i = (1 * (w // s) + 2) * 2 + 1
                score[0, i], bbox[0, i] = 0.9, [1.0, 0.5, 1.0, 2.0]
                kps[0, i] = [-0.5, 0.0, 0.5, 0.0, 0.0, 0.5, -0.4, 1.0, 0.4, 1.0]
                score[0, i - 1], bbox[0, i - 1] = 0.7, [1.0, 0.5, 1.0, 2.0]
            if s == 8:
                score[0, 0] = 0.2
            out.update({f"score_{s}": score, f"bbox_{s}": bbox, f"kps_{s}": kps})
        return [out[n] for n in names]


def test_scrfd_decoding_maps_anchors_back_to_original_pixels():
    sess = FakeScrfdSession()
    det = ScrfdDetector("fake.onnx", max_side=64, score_threshold=0.5, session=sess)
    found = det.detect(np.zeros((128, 96, 3), dtype=np.uint8))  # scale 0.5 -> 48x64, padded to 64x64
    assert sess.seen == [(1, 3, 64, 64)]
    assert len(found) == 1  # duplicate suppressed, low score dropped
    d = found[0]
    # anchor centre (32, 16) in input pixels; distances x16; then / 0.5 back to the original image
    assert np.allclose(d.box, (32.0, 16.0, 96.0, 96.0))
    assert d.score == pytest.approx(0.9)
    assert np.allclose(d.points[0], (48.0, 32.0)) and np.allclose(d.points[4], (76.8, 64.0))


def test_scrfd_input_keeps_aspect_and_pads_to_multiples_of_32():
    det = ScrfdDetector("fake.onnx", max_side=640, session=FakeScrfdSession())
    assert det.input_size(250, 250)[1:] == (250, 250, 256, 256)  # never upscaled by default
    scale, nw, nh, pw, ph = det.input_size(4000, 3000)
    assert (nw, nh, pw, ph) == (640, 480, 640, 480) and scale == pytest.approx(0.16)
    centres = anchor_centres(2, 3, 8)
    assert centres.shape == (12, 2) and centres[0].tolist() == centres[1].tolist() == [0, 0]
    assert centres[2].tolist() == [8, 0] and centres[6].tolist() == [0, 8]


# ------------------------------------------------------------------ the protocol: a pack is one module
def test_a_fourth_pack_is_one_module(monkeypatch):
    from visionlake.faces import packs

    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setitem(packs.PACKS, "toy", "toy_pack:build")
    pipe = FacePipeline(pack="toy")
    assert isinstance(pipe, Pipeline)
    assert isinstance(pipe.detector, Detector) and isinstance(pipe.embedder, Embedder)
    img = Image.new("RGB", (80, 60), (200, 10, 10))
    (face, vec), = pipe.analyse(img)
    assert pipe.name == "toy-space" and pipe.dim == 3 and face.box == (20, 15, 60, 45)
    assert np.allclose(vec, pipe.embed(img, [face])[0]) and vec[0] > 0.99
    assert pipe.crop(img, face, 32).size == (32, 32)
    many = pipe.analyse_many([img, Image.new("RGB", (40, 40), (0, 0, 250))])
    assert [len(m) for m in many] == [1, 1] and many[1][0][1][2] > 0.99


def test_unknown_pack_is_bad_input():
    with pytest.raises(BadInput, match="arcface-s"):
        FacePipeline(pack="arcface-xl")


# ------------------------------------------------------------------ licence acceptance
def test_non_commercial_pack_needs_a_recorded_acceptance(lake, monkeypatch):
    monkeypatch.setenv("VISIONLAKE_ACTOR", "ada")
    require_licence(lake, "dlib")  # permissive: nothing to accept
    with pytest.raises(LicenceNotAccepted, match="use-pack arcface-s --accept-licence non-commercial"):
        require_licence(lake, "arcface-s")
    with pytest.raises(LicenceNotAccepted, match="non-commercial"):
        accept_licence(lake, "arcface-s", "commercial")
    rec = accept_licence(lake, "arcface-s", "non-commercial")
    assert rec["accepted_by"] == "ada" and "non-commercial" in rec["terms"]
    require_licence(lake, "arcface-s")
    from visionlake.lake import Lake

    again = Lake(lake.root)  # recorded in lake.json, shown by info
    info = again.info()
    assert info["licences"]["arcface-s"]["accepted_by"] == "ada"
    assert info["licences"]["arcface-s"]["accepted_at"]
    again.close()


def test_collection_records_its_pack_and_faces_of_two_packs_never_mix(lake):
    from visionlake.catalog.models import Image as ImageRow
    from visionlake.faces.models import Face
    from visionlake.faces.sync import check_pack, seal, sync_index

    lake.create_collection("people", "faces")
    with pytest.raises(LicenceNotAccepted):
        set_collection_pack(lake, "people", "arcface-s")
    accept_licence(lake, "arcface-s", "non-commercial")
    assert set_collection_pack(lake, "people", "arcface-s")["changed"]
    assert pack_of(lake.collection("people")) == "arcface-s"
    assert lake.info()["collections"][0]["face_pack"] == "arcface-s"
    col = lake.collection("people")
    with lake.session() as s:
        img = ImageRow(collection_id=col.id, sha256="0" * 64, path="x.jpg")
        s.add(img)
        s.flush()
        s.add(Face(collection_id=col.id, image_id=img.id, box=[0, 0, 9, 9], pack="arcface-s",
                   embedding=seal(lake.cipher, np.ones(512, dtype=np.float32) / np.sqrt(512))))
    with pytest.raises(BadInput, match="holds faces embedded with 'arcface-s', not 'dlib-resnet-v1'"):
        check_pack(lake, col.id, "people", "dlib-resnet-v1")
    with pytest.raises(BadInput, match="switch-pack"):
        set_collection_pack(lake, "people", "dlib")
    sync_index(lake, "people")  # the row was written by hand: leave the lake consistent


# ------------------------------------------------------------------ the real arcface-s files
@pytest.fixture(scope="module")
def arcface_pipe(real_model):
    return FacePipeline(pack="arcface-s", model_dir=str(real_model("arcface-s")), threads=1)


def test_arcface_s_finds_aligns_and_embeds_real_faces(arcface_pipe, lfw_image_paths):
    pipe = arcface_pipe
    assert pipe.name == "arcface-s" and pipe.dim == 512 and not pipe.commercial_use
    vec: dict[str, list[np.ndarray]] = {}
    for name, files in lfw_image_paths.items():
        for p in files[:2]:
            img = load_image(p)
            found = pipe.analyse(img)
            assert found, f"no face in {p}"
            face, v = found[0]
            (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
            assert lx < nx < rx and max(ly, ry) < ny < min(mly, mry) and mlx < mrx
            assert v.shape == (512,) and abs(float(np.linalg.norm(v)) - 1) < 1e-4
            again = pipe.embed(img, [face])[0]  # from stored landmarks, as re-embedding does
            assert float(again @ v) > 0.999
            vec.setdefault(name, []).append(v)
    names = list(vec)
    same = [float(vec[n][0] @ vec[n][1]) for n in names]
    diff = [float(vec[a][0] @ vec[b][1]) for a in names for b in names if a != b]
    assert min(same) > pipe.threshold(1e-3) > max(diff)
    batched = pipe.analyse_many([load_image(lfw_image_paths[n][0]) for n in names])
    for n, found in zip(names, batched, strict=True):
        assert float(found[0][1] @ vec[n][0]) > 0.999  # batching does not change templates
    assert pipe.crop(load_image(lfw_image_paths[names[0]][0]), batched[0][0][0], 96).size == (96, 96)
    assert pipe.detect(Image.new("RGB", (300, 200), (128, 128, 128))) == []


def test_arcface_s_warps_like_cv2_by_default(arcface_pipe, real_model, lfw_image_paths):
    """The default crops follow insightface's cv2 pixel centres; the old Pillow convention stays
    selectable. On a 3x enlarged LFW photo (a face shrunk ~3x into the crop, like a phone photo) the
    old crop is ~0.35 px off: visibly different pixels and a slightly different template."""
    assert arcface_pipe.options["align_centres"] == "cv2"
    old = FacePipeline(pack="arcface-s", model_dir=str(real_model("arcface-s")), threads=1, align_centres="pil")
    img = load_image(lfw_image_paths[next(iter(lfw_image_paths))][0])
    img = img.resize((img.width * 3, img.height * 3), Image.Resampling.BILINEAR)
    face, v = arcface_pipe.analyse(img)[0]
    v_old = old.embed(img, [face])[0]
    assert 0.95 < float(v @ v_old) < 0.9995
    a = np.asarray(arcface_pipe.crop(img, face, 112), dtype=float)
    b = np.asarray(old.crop(img, face, 112), dtype=float)
    assert np.abs(a - b).mean() > 1.0
    with pytest.raises(BadInput, match="align_centres"):
        FacePipeline(pack="arcface-s", model_dir=str(real_model("arcface-s")), align_centres="opencv")


# ------------------------------------------------------------------ the CLI a user types
def test_use_pack_cli_records_acceptance_and_info_shows_it(tmp_path, monkeypatch, capsys):
    import json
    import sys

    from visionlake.cli import build_app
    from visionlake.cli.common import run_cli

    monkeypatch.setenv("VISIONLAKE_ACTOR", "grace")
    lake = str(tmp_path / "lake")

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["visionlake", "--lake", lake, *args])
        code = run_cli(build_app())
        out = capsys.readouterr()
        return code, out.out, " ".join(out.err.split())

    code, _, err = run("faces", "use-pack", "arcface-s", "-c", "people")
    assert code == 2 and "non-commercial" in err and "--accept-licence" in err
    code, out, err = run("faces", "use-pack", "arcface-s", "--accept-licence", "non-commercial", "-c", "people")
    assert code == 0, err
    assert "accepted for this lake by grace" in out and "uses arcface-s" in out
    code, out, _ = run("info", "--json")
    info = json.loads(out)
    assert info["licences"]["arcface-s"]["accepted_by"] == "grace"
    assert info["collections"][0]["face_pack"] == "arcface-s"
    code, out, _ = run("faces", "packs", "--json")
    packs = {p["pack"]: p for p in json.loads(out)["packs"]}
    assert packs["arcface-s"]["accepted_here"] and not packs["arcface-s"]["commercial_use"]
    assert packs["dlib"]["commercial_use"]
    code, _, err = run("faces", "detect", "--pack", "arcface-s", str(tmp_path / "none.jpg"))
    assert code == 2 and "--accept-licence non-commercial" in err  # outside a lake: never silently


def test_dlib_pack_with_yunet_finds_and_embeds_like_hog(real_model, lfw_image_paths):
    real_model("yunet")
    img = load_image(lfw_image_paths["Tony_Blair"][0])
    hog = FacePipeline(pack="dlib")
    yun = FacePipeline(pack="dlib", detector="yunet")
    (fh, vh), = hog.analyse(img)[:1]
    (fy, vy), = yun.analyse(img)[:1]
    assert fy.stage == "yunet" and len(fy.landmarks) == 5
    assert float(vh @ vy) > 0.9  # dlib's own landmarks inside YuNet's box: the same template space
    with pytest.raises(BadInput, match="fallback"):
        FacePipeline(pack="dlib", fallback="magic")
