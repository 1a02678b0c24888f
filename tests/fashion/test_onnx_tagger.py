from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from visionlake.errors import BadInput, ModelUnavailable
from visionlake.fashion.onnx_tagger import UNSURE, OnnxFashionModel, Preprocess, ZeroShotTagger
from visionlake.fashion.tagger import FashionTagger, load_model
from visionlake.fashion.taxonomy import load_taxonomy


def test_default_model_offline_fails_with_a_way_out(monkeypatch, tmp_path):
    monkeypatch.delenv("VISIONLAKE_FASHION_MODEL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelUnavailable) as err:
        load_model()
    msg = err.value.message
    assert "Marqo/marqo-fashionSigLIP" in msg and "--model-dir" in msg and "VISIONLAKE_FASHION_MODEL" in msg


def test_missing_local_folder_and_incomplete_folder(tmp_path):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_model(str(tmp_path / "nothing-here"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="vision_model.onnx not found"):
        load_model(str(tmp_path / "empty"))


def test_local_folder_and_env_variable_load_the_same_model(tiny_model_dir, monkeypatch):
    a = load_model(str(tiny_model_dir))
    monkeypatch.setenv("VISIONLAKE_FASHION_MODEL", str(tiny_model_dir))
    b = load_model()
    im = Image.new("RGB", (90, 120), (200, 40, 40))
    assert a.dim == 32 and a.preprocess.size == 64  # size read from the model's input
    np.testing.assert_allclose(a.embed_images([im]), b.embed_images([im]), atol=1e-6)


def test_zero_shot_colour_with_prompt_ensembles(tiny_model_dir):
    model = load_model(str(tiny_model_dir))
    tagger = ZeroShotTagger(model, load_taxonomy(), attributes=["colour"], threshold=0.4)
    ims = [Image.new("RGB", (64, 64), c) for c in [(230, 20, 20), (20, 200, 20), (20, 20, 230), (250, 250, 250)]]
    tags = tagger.tag_embeddings(model.embed_images(ims), with_scores=True)
    assert [t[0].value for t in tags] == ["red", "green", "blue", "white"]
    for t in tags:
        assert abs(sum(t[0].scores.values()) - 1) < 1e-4  # calibrated: a distribution over values
        assert t[0].confidence == max(t[0].scores.values())


def test_unsure_below_threshold(tiny_model_dir):
    model = load_model(str(tiny_model_dir))
    grey = model.embed_images([Image.new("RGB", (64, 64), (128, 128, 128))])
    sure = ZeroShotTagger(model, load_taxonomy(), attributes=["pattern"], threshold=0.0)
    strict = ZeroShotTagger(model, load_taxonomy(), attributes=["pattern"], threshold=0.99)
    assert sure.tag_embeddings(grey)[0][0].value != UNSURE
    assert strict.tag_embeddings(grey)[0][0].value == UNSURE
    with pytest.raises(BadInput):
        ZeroShotTagger(model, load_taxonomy(), threshold=1.5)
    with pytest.raises(BadInput, match="unknown attribute"):
        ZeroShotTagger(model, load_taxonomy(), attributes=["smell"])


def test_batching_does_not_change_embeddings(tiny_model_dir):
    rng = np.random.default_rng(0)
    ims = [Image.fromarray(rng.integers(0, 255, (50 + i, 70, 3), dtype=np.uint8)) for i in range(7)]
    one = OnnxFashionModel(str(tiny_model_dir), batch_size=1, threads=1).embed_images(ims)
    many = OnnxFashionModel(str(tiny_model_dir), batch_size=4, threads=2).embed_images(ims)
    np.testing.assert_allclose(one, many, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1, atol=1e-5)


def test_whole_person_photo_gets_upper_and_lower_tags(tiny_model_dir, make_garment):
    from PIL import ImageDraw

    im = Image.new("RGB", (120, 240), (255, 255, 255))
    d = ImageDraw.Draw(im)
    d.ellipse([45, 5, 75, 35], fill=(224, 172, 140))  # head
    d.rectangle([30, 35, 90, 120], fill=(210, 30, 30))  # red top
    d.rectangle([35, 120, 85, 230], fill=(30, 40, 200))  # blue trousers
    tagger = FashionTagger(load_model(str(tiny_model_dir)), attributes=["colour"])
    _emb, tags = tagger.tag([im, make_garment((30, 160, 40))])
    by_region = {t.region: t.value for t in tags[0]}
    assert by_region["upper"] == "red" and by_region["lower"] == "blue"
    assert {t.region for t in tags[1]} == {"whole"}  # a product shot has no body regions


def test_preprocess_bad_input():
    with pytest.raises(BadInput):
        Preprocess()(["not an image"])


def test_preprocess_matches_open_clip_transform():
    open_clip = pytest.importorskip("open_clip", reason="open_clip (clip extra) not installed")
    torch = pytest.importorskip("torch")
    _m, _, pre = open_clip.create_model_and_transforms(
        "ViT-B-16-SigLIP", pretrained=None, image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5),
        image_interpolation="bicubic", image_resize_mode="squash")
    rng = np.random.default_rng(1)
    ims = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in [(300, 200), (224, 224)]]
    ref = torch.stack([pre(im) for im in ims]).numpy()
    np.testing.assert_allclose(Preprocess()(ims), ref, atol=1e-5)
