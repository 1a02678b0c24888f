"""Unknown-person grouping: the metric, the algorithm against DBSCAN, and incremental lake groups."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from gallery_fakes import BLUE, GREEN, ORANGE, RED, FakePipeline, photo  # noqa: E402

from visionlake.analysers.base import DecodedImage, WorkerContext  # noqa: E402
from visionlake.catalog.models import Image as ImageRow  # noqa: E402
from visionlake.errors import BadInput, NotFound  # noqa: E402
from visionlake.faces import cluster as fc  # noqa: E402
from visionlake.faces import gallery  # noqa: E402
from visionlake.faces.analyser import FaceAnalyser  # noqa: E402
from visionlake.faces.models import Face  # noqa: E402
from visionlake.lake import Lake  # noqa: E402


def test_bcubed_matches_hand_computed_values():
    truth = np.array([0, 0, 0, 1, 1])
    perfect = fc.bcubed(truth, np.array([5, 5, 5, 7, 7]))
    assert perfect == (1.0, 1.0, 1.0)
    p, r, f = fc.bcubed(truth, np.array([0, 0, 0, 0, 0]))
    # precision: 3 items see 3/5, 2 items see 2/5 -> (9/5 + 4/5)/5 = 13/25; recall 1
    assert p == pytest.approx(13 / 25) and r == 1.0 and f == pytest.approx(2 * 0.52 / 1.52)
    p, r, _ = fc.bcubed(truth, np.arange(5))
    assert p == 1.0 and r == pytest.approx((3 * 1 / 3 + 2 * 1 / 2) / 5)


def _identities(n_people=40, per=6, dim=32, spread=0.35, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_people, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.repeat(centres, per, axis=0) + spread / np.sqrt(dim) * rng.standard_normal((n_people * per, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(n_people), per)


def test_average_linkage_and_chinese_whispers_recover_identities():
    x, y = _identities()
    for method in ("average", "cw"):
        _p, _r, f = fc.bcubed(y, fc.cluster_vectors(x, 0.6, method))
        assert f > 0.97, method


def test_average_linkage_does_not_chain_two_people_like_dbscan():
    # two people joined by a thin bridge of in-between faces (poses, lighting): DBSCAN's density
    # reachability walks across the bridge and merges them, average linkage keeps them apart
    rng = np.random.default_rng(3)
    a, b = np.zeros(16), np.zeros(16)
    a[0], b[1] = 1.0, 1.0
    people = [a + 0.05 * rng.standard_normal((30, 16)), b + 0.05 * rng.standard_normal((30, 16))]
    bridge = np.array([np.cos(t) * a + np.sin(t) * b for t in np.linspace(0.1, np.pi / 2 - 0.1, 12)])
    x = np.vstack(people + [bridge])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.array([0] * 30 + [1] * 30 + [2] * 12)
    ours = fc.bcubed(y, fc.cluster_vectors(x, 0.8, "average"))[2]
    dbscan = fc.bcubed(y, fc.dbscan_labels(x, eps=0.2, min_samples=2))[2]
    assert ours > dbscan + 0.1


@pytest.fixture
def lake(tmp_path, monkeypatch):
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    monkeypatch.setitem(__import__("visionlake.faces.thresholds", fromlist=["x"]).CALIBRATED, "fake-v1",
                        {1e-3: 0.6, 1e-4: 0.7})
    monkeypatch.setitem(fc.CLUSTER_THRESHOLDS, "fake-v1", 0.6)
    lk = Lake(tmp_path / "lake")
    lk.create_collection("street", "faces")
    yield lk
    lk.close()


def _ingest(lake, tmp_path, name, squares):
    """What ingestion does for one image: analyse in the 'worker', persist in the main process."""
    pipe = FakePipeline()
    analyser = FaceAnalyser()
    analyser._pipeline = pipe
    path = photo(tmp_path / "src" / f"{name}.png", squares)
    data = path.read_bytes()
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    col = lake.collection("street")
    ctx = WorkerContext(lake.root, "street", lake.collection_dir("street"))
    result = analyser.analyse([DecodedImage(str(path), sha, Image.open(path).convert("RGB"))], ctx)[0]
    with lake.session() as s:
        img = ImageRow(collection_id=col.id, sha256=sha, path=str(path))
        s.add(img)
        s.flush()
        analyser.persist(lake, s, col, img.id, result)
    analyser.finalize(lake, col)
    return result


def test_lake_clustering_is_incremental_and_groups_can_be_edited(lake, tmp_path):
    for i in range(3):
        _ingest(lake, tmp_path, f"r{i}", [(RED, 10 + 5 * i, 10, 80 + i), (BLUE, 170, 20 + 3 * i, 70 + i)])
    _ingest(lake, tmp_path, "g0", [(GREEN, 30, 30, 90)])
    rep = fc.cluster(lake, "street")
    assert rep["groups_created"] == 2 and rep["grouped_new"] == 6 and rep["ungrouped"] == 1
    before = {g["id"]: g["faces"] for g in fc.groups(lake, "street")}
    assert sorted(before.values()) == [3, 3]

    # new photos: a red face joins its group; a second green face pairs with the lone one
    _ingest(lake, tmp_path, "r9", [(RED, 40, 40, 95)])
    _ingest(lake, tmp_path, "g1", [(GREEN, 60, 50, 85)])
    rep = fc.cluster(lake, "street")
    assert rep["joined_existing"] == 1 and rep["groups_created"] == 1
    sizes = sorted(g["faces"] for g in fc.groups(lake, "street"))
    assert sizes == [2, 3, 4]
    assert fc.cluster(lake, "street")["new_faces"] == 0  # nothing new: nothing moves

    gs = fc.groups(lake, "street")
    big, mid, small = gs[0]["id"], gs[1]["id"], gs[2]["id"]
    assert fc.rename_group(lake, "street", big, "man in red")["label"] == "man in red"
    merged = fc.merge_groups(lake, "street", [big, small])
    assert merged["faces_moved"] == 2 and len(fc.groups(lake, "street")) == 2
    with lake.session() as s:
        green_ids = [f.id for f in s.query(Face).filter(Face.group_id == big)][-2:]
    split = fc.split_group(lake, "street", big, face_ids=green_ids)
    assert split["faces_moved"] == 2 and len(fc.groups(lake, "street")) == 3
    with pytest.raises(NotFound):
        fc.rename_group(lake, "street", 9999, "x")
    with pytest.raises(BadInput):
        fc.merge_groups(lake, "street", [big])

    # a named group becomes an enrolled person that identify recognises
    out = fc.name_group(lake, "street", mid, "Blue Person")
    assert out["faces"] == 3
    probe = photo(tmp_path / "probe.png", [(BLUE, 10, 10, 80)])
    hit = gallery.identify(lake, "street", probe, pipeline=FakePipeline())
    assert hit["faces"][0]["identity"] == "Blue Person"

    # a face that matches an enrolled person is not put in an unknown group
    _ingest(lake, tmp_path, "b9", [(BLUE, 20, 20, 88)])
    _ingest(lake, tmp_path, "o1", [(ORANGE, 20, 20, 88)])
    rep = fc.cluster(lake, "street")
    assert rep["matched_enrolled"] == 1
