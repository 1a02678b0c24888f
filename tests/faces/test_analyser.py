"""FaceAnalyser: what ingestion stores per face, and a real ingestion of LFW photos."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from gallery_fakes import BLUE, RED, FakePipeline, photo  # noqa: E402

from visionlake.analysers.base import DecodedImage, WorkerContext  # noqa: E402
from visionlake.catalog.models import Image as ImageRow  # noqa: E402
from visionlake.faces.analyser import FaceAnalyser, crop_relpath  # noqa: E402
from visionlake.faces.models import Face  # noqa: E402
from visionlake.faces.sync import face_index, unseal  # noqa: E402
from visionlake.lake import Lake  # noqa: E402


@pytest.fixture
def lake(tmp_path, monkeypatch):
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    lk = Lake(tmp_path / "lake")
    lk.create_collection("street", "faces")
    yield lk
    lk.close()


def test_analyse_and_persist_store_faces_crops_and_encrypted_vectors(lake, tmp_path):
    path = photo(tmp_path / "two.png", [(RED, 20, 20, 100), (BLUE, 180, 40, 70)])
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    analyser = FaceAnalyser()
    analyser._pipeline = FakePipeline()
    ctx = WorkerContext(lake.root, "street", lake.collection_dir("street"))
    [result] = analyser.analyse([DecodedImage(str(path), sha, Image.open(path).convert("RGB"))], ctx)
    assert len(result["faces"]) == 2
    for i in range(2):
        assert (lake.root / crop_relpath("street", sha, i)).exists()
    col = lake.collection("street")
    with lake.session() as s:
        img = ImageRow(collection_id=col.id, sha256=sha, path=str(path))
        s.add(img)
        s.flush()
        analyser.persist(lake, s, col, img.id, result)
    analyser.finalize(lake, col)
    with lake.session() as s:
        rows = s.query(Face).order_by(Face.id).all()
    assert [r.box for r in rows] == [[20, 20, 120, 120], [180, 40, 250, 110]]
    assert all(len(r.landmarks) == 5 and r.pack == "fake-v1" for r in rows)
    raw = np.frombuffer(result["faces"][0]["embedding"], dtype=np.float32)
    assert rows[0].embedding != raw.tobytes() and np.allclose(unseal(lake.cipher, rows[0].embedding), raw)
    index = face_index(lake, "street", 32)
    assert sorted(index.ids().tolist()) == [r.id for r in rows]
    assert (lake.collection_dir("street") / "index" / "faces" / "index.faiss").exists()


def test_a_rolled_back_image_leaves_no_vector_after_finalize(lake, tmp_path):
    path = photo(tmp_path / "one.png", [(RED, 20, 20, 100)])
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    analyser = FaceAnalyser()
    analyser._pipeline = FakePipeline()
    ctx = WorkerContext(lake.root, "street", lake.collection_dir("street"))
    [result] = analyser.analyse([DecodedImage(str(path), sha, Image.open(path).convert("RGB"))], ctx)
    col = lake.collection("street")
    with pytest.raises(RuntimeError), lake.session() as s:
        img = ImageRow(collection_id=col.id, sha256=sha, path=str(path))
        s.add(img)
        s.flush()
        analyser.persist(lake, s, col, img.id, result)
        raise RuntimeError("crash inside the image's transaction")
    assert face_index(lake, "street", 32).count() == 1  # added before the rollback...
    other = photo(tmp_path / "other.png", [(BLUE, 20, 20, 100)])
    sha2 = hashlib.sha256(other.read_bytes()).hexdigest()
    [r2] = analyser.analyse([DecodedImage(str(other), sha2, Image.open(other).convert("RGB"))], ctx)
    with lake.session() as s:
        img = ImageRow(collection_id=col.id, sha256=sha2, path=str(other))
        s.add(img)
        s.flush()
        analyser.persist(lake, s, col, img.id, r2)
    analyser.finalize(lake, col)
    with lake.session() as s:
        ids = [f.id for f in s.query(Face)]
    assert sorted(face_index(lake, "street", 32).ids().tolist()) == ids  # ...and repaired at finalize


def test_ingest_lfw_photos_into_a_faces_collection(lake, tmp_path, lfw_root):
    from visionlake.ingest import ingest

    images = lfw_root / "images"
    src = tmp_path / "src"
    src.mkdir()
    people = ["Colin_Powell", "Tony_Blair", "Hal_Sutton", "Jean_Charest", "Arlen_Specter"]
    for p in people:
        for f in sorted((images / p).glob("*.jpg"))[:4]:
            shutil.copy(f, src / f.name)
    n = len(list(src.iterdir()))
    report = ingest(lake, src, "street", workers=0)
    assert report is not None
    with lake.session() as s:
        faces = s.query(Face).all()
        images = s.query(ImageRow).count()
    assert images == n
    assert len({f.image_id for f in faces}) >= n - 1  # every LFW photo has a face (allow one miss)
    assert all(f.embedding.startswith(b"VLK1") and (lake.root / f.crop).exists() for f in faces)
    index = face_index(lake, "street", 128)
    assert sorted(index.ids().tolist()) == sorted(f.id for f in faces)
