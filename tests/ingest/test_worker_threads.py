"""Pool workers share the cores: each sizes its model thread pool to cores // workers.

Before, every ingest/analyse worker gave ONNX Runtime all cores (``VISIONLAKE_WORKERS`` was read but
never set), so 2 workers on 2 cores ran 4 compute threads that preempted each other. The thread count
must not change a result: the backbone's embeddings are compared bit for bit across thread counts.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image

from visionlake.analysers import Analyser
from visionlake.analysers.base import WORKERS_ENV
from visionlake.ingest import ingest
from visionlake.lake import Lake


class ThreadsProbe(Analyser):
    """Reports, from inside the worker, the ORT thread count the fashion analysers would use."""

    name = "threads_probe"
    seen: ClassVar[list[tuple[int, int]]] = []

    def analyse(self, images: list[Any], ctx: Any) -> list[dict[str, Any]]:
        from visionlake.fashion.analyser import _worker_threads

        return [{"pid": os.getpid(), "threads": _worker_threads()} for _ in images]

    def persist(self, lake, session, collection, image_id, result) -> None:  # type: ignore[override]
        ThreadsProbe.seen.append((result["pid"], result["threads"]))  # runs in the main process


def _photos(folder, n: int = 40) -> None:
    folder.mkdir()
    for i in range(n):
        Image.new("RGB", (16, 16), (i * 6, 255 - i * 6, 90)).save(folder / f"{i}.png")


@pytest.mark.parametrize("workers", [0, 2])
def test_pool_workers_divide_the_cores_between_them(tmp_path, monkeypatch, workers) -> None:
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    _photos(tmp_path / "photos")
    lake = Lake(tmp_path / "lake")
    lake.create_collection("c", "plain", settings={"analysers": [f"{__name__}:ThreadsProbe"]})
    ThreadsProbe.seen.clear()
    report = ingest(lake, tmp_path / "photos", "c", workers=workers)
    assert report["ingested"] == 40 and report["failed"] == 0
    cores = os.cpu_count() or 1
    expected = cores if workers == 0 else max(1, cores // workers)
    assert {t for _, t in ThreadsProbe.seen} == {expected}
    if workers:
        assert os.getpid() not in {p for p, _ in ThreadsProbe.seen}
    assert WORKERS_ENV not in os.environ  # the parent's environment is left alone


def test_analyse_pool_workers_divide_the_cores_too(tmp_path, monkeypatch) -> None:
    from visionlake.analysers.rerun import analyse

    monkeypatch.delenv(WORKERS_ENV, raising=False)
    _photos(tmp_path / "photos", 20)
    lake = Lake(tmp_path / "lake")
    lake.create_collection("c", "plain", settings={"analysers": [f"{__name__}:ThreadsProbe"]})
    ingest(lake, tmp_path / "photos", "c", workers=0)
    ThreadsProbe.seen.clear()
    analyse(lake, "c", [f"{__name__}:ThreadsProbe"], workers=2)
    assert len(ThreadsProbe.seen) == 20
    assert {t for _, t in ThreadsProbe.seen} == {max(1, (os.cpu_count() or 1) // 2)}


def test_a_user_setting_wins(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(WORKERS_ENV, "1")
    _photos(tmp_path / "photos", 8)
    lake = Lake(tmp_path / "lake")
    lake.create_collection("c", "plain", settings={"analysers": [f"{__name__}:ThreadsProbe"]})
    ThreadsProbe.seen.clear()
    ingest(lake, tmp_path / "photos", "c", workers=2)
    assert {t for _, t in ThreadsProbe.seen} == {os.cpu_count() or 1}


def test_backbone_embeddings_do_not_depend_on_the_thread_count(real_model, products_dir) -> None:
    real_model("efficientnet-lite0")
    from visionlake.fashion.backbone import BackboneModel

    photos = []
    for p in sorted(products_dir.glob("*.jpg"))[:24]:
        with Image.open(p) as im:
            photos.append(im.convert("RGB"))
    one = BackboneModel(threads=1, batch_size=16).embed_images(photos)
    two = BackboneModel(threads=2, batch_size=16).embed_images(photos)
    assert one.shape == (24, 8704)
    assert np.array_equal(one, two)
