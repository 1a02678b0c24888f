"""Ingestion's colour analyser uses a collection's trained colour head, records it, and falls back safely."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from sqlalchemy import select

from visionlake.analysers.base import DecodedImage, WorkerContext
from visionlake.errors import ModelUnavailable
from visionlake.fashion import colour_training
from visionlake.fashion.analyser import ColourAnalyser
from visionlake.fashion.colour_head import CANDIDATES, fit_colour_head
from visionlake.fashion.models import FashionTag
from visionlake.ingest import ingest

# a catalogue whose convention differs from the model-free thresholds: it calls this charcoal "Black"
CHARCOAL = (118, 118, 122)
RED = (200, 30, 40)


def colour_tags(lake) -> dict[str, tuple[str, str]]:
    """Image path stem -> (family, tag source) of every colour tag."""
    from visionlake.catalog.models import Image

    with lake.session() as s:
        rows = s.execute(select(Image.path, FashionTag.value, FashionTag.source).join(Image)
                         .where(FashionTag.attribute == "colour")).all()
    return {str(p).rsplit("/", 1)[-1].split(".")[0]: (v, src) for p, v, src in rows}


@pytest.fixture()
def labelled_shop(lake, tmp_path, make_garment):
    """12 photos (6 charcoal labelled Black, 6 red labelled Red) ingested with only the colour analyser."""
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    lines = ["id,baseColour"]
    for i in range(12):
        base, label = (CHARCOAL, "Black") if i % 2 == 0 else (RED, "Red")
        rgb = tuple(int(np.clip(c + rng.integers(-8, 9), 0, 255)) for c in base)
        make_garment(rgb, size=96).save(src / f"p{i}.png")
        lines.append(f"p{i},{label}")
    (tmp_path / "meta.csv").write_text("\n".join(lines) + "\n")
    lake.create_collection("shop", "fashion", settings={"analysers": ["colour"]})
    ingest(lake, src, "shop", meta=tmp_path / "meta.csv", workers=0)
    return lake


def test_trained_head_answers_at_analysis_and_is_recorded(labelled_shop, tiny_model_dir, tmp_path, monkeypatch,
                                                          capsys) -> None:
    lake = labelled_shop
    before = colour_tags(lake)
    assert {before[f"p{i}"] for i in range(0, 12, 2)} == {("grey", "colour")}  # model-free: charcoal is grey

    report = colour_training.train_colour_head(lake, "shop", "baseColour", backbone=False)
    assert report["samples"] == 12 and report["classes"] == ["black", "red"] and report["cv_accuracy"] == 1.0
    assert lake.collection("shop").settings["colour_head"]["name"] == report["model"]

    from visionlake.ingest.analyse import analyse

    analyse(lake, "shop", ["colour"], workers=0)
    after = colour_tags(lake)
    assert {after[f"p{i}"] for i in range(0, 12, 2)} == {("black", "colour-head")}
    assert {after[f"p{i}"] for i in range(1, 12, 2)} == {("red", "colour-head")}

    # `fashion tag -c` answers with the same head and says so
    from visionlake.cli.common import run_cli
    from visionlake.cli.fashion import app

    monkeypatch.setattr(sys, "argv", ["visionlake-fashion", "tag", str(tmp_path / "src" / "p0.png"), "-c", "shop",
                                      "--model-dir", str(tiny_model_dir), "--lake", str(lake.root), "--json"])
    assert run_cli(app) == 0
    colour = json.loads(capsys.readouterr().out)[0]["colour"]
    assert colour["family"] == "black" and colour["family_model"] == report["model"]
    assert colour["family_model_free"] == "grey"


def test_train_colour_cli_refuses_a_column_without_colour_names(labelled_shop, monkeypatch, capsys) -> None:
    from visionlake.cli.common import run_cli
    from visionlake.cli.fashion import app

    monkeypatch.setattr(sys, "argv", ["visionlake-fashion", "train-colour", "-c", "shop", "--label-column", "id",
                                      "--no-backbone", "--lake", str(labelled_shop.root)])
    code = run_cli(app)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "has a colour name in its 'id' metadata" in err and "Traceback" not in err


def _ctx(tmp_path) -> WorkerContext:
    return WorkerContext(lake_root=tmp_path, collection="c", collection_dir=tmp_path / "c")


def _image(rgb: tuple[int, int, int], make_garment) -> DecodedImage:
    return DecodedImage(path="x.png", sha256="0", image=make_garment(rgb, size=96))


def test_head_needing_the_missing_backbone_falls_back_to_model_free(tmp_path, monkeypatch, make_garment) -> None:
    rng = np.random.default_rng(0)
    head = fit_colour_head(rng.normal(size=(20, 4)), ["red", "black"] * 10,
                           candidates={"logreg C=0.1": CANDIDATES["logreg C=0.1"]}, parts=("lab", "emb"))
    head.save(colour_training.head_path(tmp_path / "c"))

    def unavailable(threads=None):
        raise ModelUnavailable("efficientnet_lite0.onnx not found")

    monkeypatch.setattr(colour_training, "load_backbone", unavailable)
    out = ColourAnalyser().analyse([_image(RED, make_garment)], _ctx(tmp_path))
    assert out[0]["colour"]["family"] == "red" and out[0]["colour"]["family_model"] == "model-free"


def test_damaged_head_file_is_ignored(tmp_path, make_garment) -> None:
    path = colour_training.head_path(tmp_path / "c")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a model")
    out = ColourAnalyser().analyse([_image(RED, make_garment)], _ctx(tmp_path))
    assert out[0]["colour"]["family"] == "red" and out[0]["colour"]["family_model"] == "model-free"
