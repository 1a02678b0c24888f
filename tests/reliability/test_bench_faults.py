"""Random SIGKILLs on a mixed ingest (``visionlake bench faults``): nothing lost, nothing doubled."""

from __future__ import annotations

import pytest


@pytest.mark.heavy
def test_random_kills_on_a_mixed_ingest_lose_and_duplicate_nothing(tmp_path) -> None:
    pytest.importorskip("onnx", reason="the tiny fashion model needs the onnx package")
    from visionlake.bench.faults import run_faults

    out = run_faults(kills=6, images=96, workers=1, seed=1, tmp=tmp_path)
    assert out["kills"] >= 2  # a run may finish before its random moment or crash point comes (timing)
    assert out["fashion_model"] == "tiny"
    assert (out["images_lost"], out["vectors_lost"], out["vectors_extra"], out["duplicates"]) == (0, 0, 0, 0)
    assert out["check_ok"], out["check_problems"]
