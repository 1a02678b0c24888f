"""Fixtures of the fault-injection suite: a tiny fashion model, synthetic photos, a CLI runner, and
the invariant every test ends with (``visionlake check`` passes; images and vectors agree)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    pytest.importorskip("onnx", reason="the onnx package (dev extra) builds the tiny test model")
    from visionlake.fashion.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


def make_photos(folder: Path, n: int, seed: int = 0, start: int = 0) -> list[Path]:
    """``n`` distinct small garment-like photos (random colour blocks), named ``p00000.jpg``..."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        arr = rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)
        p = folder / f"p{i:05d}.jpg"
        Image.fromarray(arr).resize((64, 64), Image.Resampling.NEAREST).save(p, quality=90)
        out.append(p)
    return out


@pytest.fixture(scope="session")
def photos_20(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos20")
    make_photos(folder, 20, seed=5)
    return folder


@pytest.fixture(scope="session")
def photos_48(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos48")
    make_photos(folder, 48)
    return folder


def vl(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``python -m visionlake ARGS`` with this checkout first on the path."""
    full = dict(os.environ)
    full.pop("VISIONLAKE_CRASH_AT", None)
    full["PYTHONPATH"] = str(REPO) + os.pathsep + full.get("PYTHONPATH", "")
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "visionlake", *args], env=full, capture_output=True, text=True,
                          timeout=timeout)


def make_fashion_lake(root: Path, model: Path, name: str = "shop") -> None:
    from visionlake.lake import Lake

    lk = Lake(root)
    lk.create_collection(name, "fashion", settings={"tagger_options": {"model": str(model)}})
    lk.close()


def counts(root: Path, collection: str = "shop") -> dict[str, int]:
    """Images in the catalog, fashion vectors in the catalog, vectors in the saved index, and paths."""
    from sqlalchemy import func, select

    from visionlake.catalog.models import Image as ImageRow
    from visionlake.catalog.models import SourcePath
    from visionlake.fashion.models import FashionEmbedding
    from visionlake.index.faiss_index import FaissIndex
    from visionlake.lake import Lake

    lk = Lake(root, create=False)
    try:
        with lk.session() as s:
            images = s.scalar(select(func.count(ImageRow.id))) or 0
            paths = s.scalar(select(func.count(SourcePath.id))) or 0
            stored = s.scalar(select(func.count(FashionEmbedding.image_id))) or 0
        folder = lk.collection_dir(collection) / "index" / "fashion"
        saved = FaissIndex(folder, dim=32).count() if (folder / "index.json").exists() else 0
    finally:
        lk.close()
    return {"images": images, "paths": paths, "stored_vectors": stored, "saved_vectors": saved}


def assert_lake_ok(root: Path) -> None:
    from visionlake.check import check_lake

    rep = check_lake(root)
    assert rep["ok"], rep["problems"]
