"""The person mask (mediapipe pose model, ``person`` extra) picks the garment pixels of photos of people.

A tiny TFLite model with the pose model's output shapes is built by the test (``tflite_writer``): its
mask is "dark pixels", its landmarks and presence score are set by the test. The photo is a dark blue
garment with a face on a studio gradient, where the flood fill of the model-free method takes the whole
frame (as on many catalogue shots of models) and names the background's white.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

pytest.importorskip("ai_edge_litert", reason="the person mask needs the 'person' extra (ai-edge-litert)")

from tflite_writer import pose_like_tflite  # noqa: E402

from visionlake.errors import ModelUnavailable  # noqa: E402
from visionlake.fashion import person_mask  # noqa: E402
from visionlake.fashion.colour import analyse_colours  # noqa: E402
from visionlake.fashion.person_mask import PersonMasker  # noqa: E402

NAVY = (40, 70, 160)
F = 256 / 224  # photo pixels -> model input units


def person_photo(face: tuple[int, int, int] = (224, 172, 140), garment: tuple[int, int, int] = NAVY) -> Image.Image:
    """224x224: a grey-to-white gradient, a face at (112, 35), a dark blue garment from row 60 down."""
    ramp = np.linspace(170, 255, 224)
    im = Image.fromarray(np.repeat(np.repeat(ramp[None, :, None], 224, 0), 3, 2).astype(np.uint8))
    d = ImageDraw.Draw(im)
    d.ellipse([94, 17, 130, 53], fill=face)
    d.rectangle([97, 60, 127, 223], fill=garment)
    return im


def landmarks(nose=(112, 35), mouth_y=45, shoulder_y=62) -> np.ndarray:
    lm = np.zeros((39, 5), np.float32)
    lm[0, :2] = (nose[0] * F, nose[1] * F)
    lm[9:11, 1] = mouth_y * F
    lm[11:13, 1] = shoulder_y * F
    return lm


@pytest.fixture(scope="module")
def tiny_pose(tmp_path_factory):
    """Factory: path of a tiny pose-like model with the given presence and landmarks."""
    folder = tmp_path_factory.mktemp("pose")

    def make(presence: float = 0.9, lm: np.ndarray | None = None, name: str = "pose.tflite"):
        path = folder / name
        path.write_bytes(pose_like_tflite(landmarks() if lm is None else lm, presence))
        return path

    return make


def test_person_mask_names_the_garment_where_the_flood_fill_takes_the_background(tiny_pose) -> None:
    photo = person_photo()
    plain = analyse_colours(photo)
    assert plain.family == "white" and plain.foreground == 1.0 and not plain.person_mask
    masked = analyse_colours(photo, masker=PersonMasker(tiny_pose()))
    assert masked.person_mask and masked.family == "blue"
    assert masked.family_shares == {"blue": 1.0}  # no background, and the face above the neck is cut


def test_no_person_keeps_todays_pixels(tiny_pose) -> None:
    photo = person_photo()
    plain = analyse_colours(photo).to_dict()
    for masker in (PersonMasker(tiny_pose(presence=0.2, name="absent.tflite")),  # the model sees no one
                   PersonMasker(tiny_pose(lm=landmarks(nose=(20, 200)), name="flat.tflite"))):  # no skin at nose
        assert masker.region(np.asarray(photo)) is None
        assert analyse_colours(photo, masker=masker).to_dict() == plain


def test_a_model_without_the_pose_outputs_is_refused(tmp_path) -> None:
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(ModelUnavailable, match="cannot load"):
        PersonMasker(bad)


def test_without_the_model_pack_colours_use_the_foreground(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VISIONLAKE_MODEL_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("VISIONLAKE_MODELS", raising=False)
    assert person_mask.load_person_masker() is None


def test_colour_analyser_uses_the_mask_and_records_it(lake, tmp_path, tiny_pose, monkeypatch) -> None:
    from visionlake.catalog.models import Image as ImageRow
    from visionlake.fashion.models import FashionTag
    from visionlake.ingest import ingest

    src = tmp_path / "src"
    src.mkdir()
    person_photo().save(src / "model.png")
    for name, masker in (("plain", None), ("masked", PersonMasker(tiny_pose()))):
        monkeypatch.setattr(person_mask, "load_person_masker", lambda threads=1, m=masker: m)
        lake.create_collection(name, "fashion", settings={"analysers": ["colour"]})
        ingest(lake, src, name, workers=0)
        with lake.session() as s:
            tag = s.execute(select(FashionTag.value).join(ImageRow)
                            .where(FashionTag.attribute == "colour")
                            .where(ImageRow.collection_id == lake.collection(name).id)).scalar_one()
        assert tag == ("blue" if masker else "white")
        assert lake.collection(name).settings.get("person_mask") == ("mediapipe-pose" if masker else None)


def test_a_tampered_model_file_in_the_wheel_is_refused(tmp_path, monkeypatch, tiny_pose) -> None:
    import zipfile

    from visionlake.models import registry

    monkeypatch.setenv("VISIONLAKE_MODEL_CACHE", str(tmp_path / "cache"))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.whl", "w") as z:
        z.writestr("mediapipe/modules/pose_landmark/pose_landmark_full.tflite", tiny_pose().read_bytes())
    with pytest.raises(ModelUnavailable):
        registry.fetch("mediapipe-pose", from_dir=wheels, progress=False)
    assert person_mask.load_person_masker() is None


def test_real_pose_model_on_catalogue_photos(real_model, products) -> None:
    real_model("mediapipe-pose")
    masker = person_mask.load_person_masker()
    assert masker is not None
    with Image.open(products / "images" / "10015.jpg") as im:  # a man wearing a white T-shirt
        rgb = np.asarray(im.convert("RGB"))
    region = masker.region(rgb)
    assert region is not None and 0.15 < region.mean() < 0.6
    assert not region[:30].any()  # the head is cut
    with Image.open(products / "images" / "10000.jpg") as im:  # a skirt laid flat
        assert masker.region(np.asarray(im.convert("RGB"))) is None


def test_train_colour_uses_the_same_pixels_and_records_the_mask(lake, tmp_path, tiny_pose, monkeypatch) -> None:
    from visionlake.fashion import colour_training
    from visionlake.ingest import ingest

    src = tmp_path / "src"
    src.mkdir()
    lines = ["id,baseColour"]
    for i in range(10):
        garment, label = (NAVY, "Navy Blue") if i % 2 else ((30, 30, 32), "Black")
        person_photo(garment=tuple(c + i for c in garment)).save(src / f"p{i}.png")  # distinct photos
        lines.append(f"p{i},{label}")
    (tmp_path / "meta.csv").write_text("\n".join(lines) + "\n")
    masker = PersonMasker(tiny_pose())
    monkeypatch.setattr(person_mask, "load_person_masker", lambda threads=1: masker)
    lake.create_collection("shop", "fashion", settings={"analysers": ["colour"]})
    ingest(lake, src, "shop", meta=tmp_path / "meta.csv", workers=0)
    report = colour_training.train_colour_head(lake, "shop", "baseColour", backbone=False)
    assert report["person_mask"] == "mediapipe-pose" and report["cv_accuracy"] == 1.0
    assert lake.collection("shop").settings["colour_head"]["person_mask"] == "mediapipe-pose"


def test_fashion_colour_command_uses_the_mask(tmp_path, tiny_pose, monkeypatch, capsys) -> None:
    import json
    import sys

    from visionlake.cli.common import run_cli
    from visionlake.cli.fashion import app

    person_photo().save(tmp_path / "model.png")
    masker = PersonMasker(tiny_pose())
    monkeypatch.setattr(person_mask, "load_person_masker", lambda threads=1: masker)
    monkeypatch.setattr(sys, "argv", ["visionlake-fashion", "colour", str(tmp_path / "model.png"), "--json"])
    assert run_cli(app) == 0
    res = json.loads(capsys.readouterr().out)[0]
    assert res["family"] == "blue" and res["person_mask"] is True


@pytest.mark.parametrize("value", ["off", "0", "OFF", "false"])
def test_switched_off_keeps_todays_pixels_where_the_model_is_fetched(tiny_pose, monkeypatch, value) -> None:
    """The README set-up ingests with VISIONLAKE_PERSON_MASK=off: a pose model an earlier run left in the
    model cache must not change its colours."""
    loaded = PersonMasker(tiny_pose())
    monkeypatch.setattr(person_mask, "PersonMasker", lambda threads=1: loaded)  # "fetched"
    monkeypatch.delenv(person_mask.DISABLE_ENV, raising=False)
    assert person_mask.load_person_masker() is loaded
    monkeypatch.setenv(person_mask.DISABLE_ENV, value)
    assert person_mask.load_person_masker() is None
    monkeypatch.setenv(person_mask.DISABLE_ENV, "on")
    assert person_mask.load_person_masker() is loaded


def test_setup_ingests_products_without_the_person_mask() -> None:
    from pathlib import Path

    setup = (Path(__file__).parents[2] / "scripts" / "setup.sh").read_text()
    ingest_line = next(line for line in setup.splitlines() if "visionlake ingest" in line)
    assert f"{person_mask.DISABLE_ENV}=off" in ingest_line
