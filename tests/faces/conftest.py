"""Shared face-test fixtures: the LFW folder (skipped when absent) and one pipeline per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionlake.config import shared_data_dir


@pytest.fixture(scope="session")
def lfw_root() -> Path:
    """The LFW folder with ``images/`` and the pair files; skips the test when it is not there."""
    root = shared_data_dir() / "lfw"
    if not (root / "images").is_dir():
        pytest.skip(f"LFW not found at {root} (set VISIONLAKE_DATA)")
    return root


@pytest.fixture(scope="session")
def lfw_image_paths(lfw_root: Path) -> dict[str, list[Path]]:
    """A few people with several photos each: name -> sorted photo paths."""
    out: dict[str, list[Path]] = {}
    for name in ("George_W_Bush", "Colin_Powell", "Tony_Blair", "Serena_Williams"):
        files = sorted((lfw_root / "images" / name).glob("*.jpg"))
        if len(files) >= 3:
            out[name] = files
    if len(out) < 3:
        pytest.skip("LFW folder lacks the expected people")
    return out


@pytest.fixture(scope="session")
def face_pipeline():
    """The default (dlib) pipeline, built once: loading models takes about a second."""
    from visionlake.faces.pipeline import FacePipeline

    return FacePipeline()
