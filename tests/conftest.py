"""Fixtures shared by every area: temporary lakes and the real data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionlake.config import shared_data_dir


@pytest.fixture
def lake(tmp_path: Path, request: pytest.FixtureRequest):
    """A fresh embedded lake in a temporary folder; ``visionlake check`` must pass on what the test leaves."""
    from visionlake.lake import Lake

    lk = Lake(tmp_path / "lake")
    yield lk
    lk.close()
    assert_lake_checks(lk.root, request)


def assert_lake_checks(root: Path, request: pytest.FixtureRequest | None = None) -> None:
    """Issue 12: every lake a test leaves behind passes ``visionlake check`` (catalog, indexes vs
    catalog, derived files, key). Tests that damage their lake on purpose mark ``damages_lake``."""
    if request is not None and request.node.get_closest_marker("damages_lake") is not None:
        return
    if not (root / "lake.json").exists():
        return
    from visionlake.check import check_lake

    rep = check_lake(root)
    assert rep["ok"], f"visionlake check fails on the lake this test left: {rep['problems']}"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or ``VISIONLAKE_DATA``); tests needing it skip with a clear message."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"real data folder not found at {root}: set VISIONLAKE_DATA to run this test")
    return root


@pytest.fixture(scope="session")
def products_dir(shared_data: Path) -> Path:
    """The 5,050 Myntra product photos."""
    p = shared_data / "fashion_products" / "images"
    if not p.is_dir():
        pytest.skip(f"{p} not found")
    return p


@pytest.fixture(scope="session")
def lfw_dir(shared_data: Path) -> Path:
    """LFW (deep-funneled) with pairs files."""
    p = shared_data / "lfw"
    if not (p / "images").is_dir():
        pytest.skip(f"{p}/images not found")
    return p


@pytest.fixture(scope="session")
def real_model():
    """``real_model(name)``: the verified folder of a real model from the user's model cache.

    CI fetches the real files the way a user does (``visionlake models fetch``, in scripts/setup.sh);
    elsewhere a test that needs them skips and says which command brings them.
    """
    from visionlake.errors import ModelUnavailable
    from visionlake.models import model_dir

    def get(name: str) -> Path:
        try:
            return model_dir(name)
        except ModelUnavailable as exc:
            pytest.skip(f"model {name} not available ({exc.message[:80]}...): run `visionlake models fetch {name}`")

    return get
