"""Fixtures for the model registry: an empty cache and wheels built on the spot (no network)."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from visionlake.models import registry
from visionlake.models.registry import ModelFile, ModelSpec, WheelSource


@pytest.fixture
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model cache and no user model folders, for this test only."""
    cache = tmp_path / "model-cache"
    monkeypatch.setenv(registry.CACHE_ENV, str(cache))
    monkeypatch.delenv(registry.MODELS_ENV, raising=False)
    return cache


@pytest.fixture
def make_wheel(tmp_path: Path) -> Callable[[str, dict[str, bytes]], Path]:
    """``make_wheel(dist, {member: bytes})``: a real zip named like a wheel of ``dist``, in its own folder."""

    def make(dist: str, members: dict[str, bytes]) -> Path:
        folder = tmp_path / f"wheels-{dist}"
        folder.mkdir(exist_ok=True)
        whl = folder / f"{dist}-0.1.0-py3-none-any.whl"
        with zipfile.ZipFile(whl, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return whl

    return make


@pytest.fixture
def toy_spec() -> Callable[..., ModelSpec]:
    """``toy_spec(payloads, **kw)``: register a model whose files are ``payloads`` (name -> bytes)."""
    registered: list[str] = []

    def make(payloads: dict[str, bytes], name: str = "toy", **kw) -> ModelSpec:
        files = tuple(
            ModelFile(fn, hashlib.sha256(data).hexdigest(), len(data), wheel_member=f"toy_pkg/model/{fn}")
            for fn, data in payloads.items()
        )
        spec = ModelSpec(name=name, role="test", licence="test-only", commercial_use=kw.pop("commercial_use", True),
                         files=files, wheel=WheelSource("toy-pkg==0.1.0"), **kw)
        registry.register(spec)
        registered.append(name)
        return spec

    yield make
    for name in registered:
        registry._SPECS.pop(name, None)
