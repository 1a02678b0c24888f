"""Service test fixtures: the LFW folder for the face endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionlake.config import shared_data_dir


@pytest.fixture(scope="session")
def lfw_images() -> Path:
    root = shared_data_dir() / "lfw" / "images"
    if not root.is_dir():
        pytest.skip(f"LFW not found at {root} (set VISIONLAKE_DATA): face endpoint tests need real faces")
    return root
