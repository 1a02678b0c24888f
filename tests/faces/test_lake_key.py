"""The lake key is never silently replaced, a wrong key is refused, and rotation survives a kill -9."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from gallery_fakes import BLUE, RED, FakePipeline, identity_vector, photo  # noqa: E402

from visionlake.cli.common import run_cli  # noqa: E402
from visionlake.cli.faces import app as faces_app  # noqa: E402
from visionlake.faces import Gallery, gallery  # noqa: E402
from visionlake.faces.audit import verify_chain  # noqa: E402
from visionlake.keyring import KeyProblem, fingerprint, rotate_lake_key  # noqa: E402
from visionlake.lake import Lake  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A lake with two people enrolled, built once per module and copied for each test."""
    tmp = tmp_path_factory.mktemp("keys")
    saved = os.environ.pop("VISIONLAKE_KEY", None)
    try:
        lake = Lake(tmp / "lake")
        for name, colour in (("Alice", RED), ("Bob", BLUE)):
            gallery.enroll(lake, "people", name, [photo(tmp / f"in/{name}.png", [(colour, 40, 40, 100)])],
                           pipeline=FakePipeline())
        lake.close()
    finally:
        if saved is not None:
            os.environ["VISIONLAKE_KEY"] = saved
    return tmp / "lake"


@pytest.fixture
def enrolled(template, tmp_path, monkeypatch):
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    monkeypatch.delenv("VISIONLAKE_CRASH_AT", raising=False)
    shutil.copytree(template, tmp_path / "lake")
    return tmp_path / "lake", FakePipeline()


def _cli(monkeypatch, capsys, lake_root, *args):
    monkeypatch.setattr(gallery, "get_pipeline", lambda *a, **k: FakePipeline())
    monkeypatch.setattr(sys, "argv", ["visionlake-faces", *args, "--lake", str(lake_root)])
    code = run_cli(faces_app)
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())


def test_a_missing_key_is_refused_and_never_replaced(enrolled, monkeypatch, capsys, tmp_path):
    root, pipe = enrolled
    key_file = root / "keys" / "lake.key"
    saved = key_file.read_bytes()
    key_file.unlink()
    for args in (["people"], ["identify", str(photo(tmp_path / "p.png", [(RED, 10, 10, 80)]))],
                 ["enroll", "--person", "Carol", str(photo(tmp_path / "c.png", [(BLUE, 10, 10, 80)]))]):
        code, out, err = _cli(monkeypatch, capsys, root, *args)
        assert code == 6, (args, out, err)
        assert "key is missing" in err and "restore" in err
        assert str(key_file) in err.replace(" ", "")  # rich may fold a long path across lines
        assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not key_file.exists(), "a new key was created for a lake holding ciphertext"
    # the original key restored: everything readable again, nothing was written under another key
    key_file.write_bytes(saved)
    os.chmod(key_file, 0o600)
    lake = Lake(root)
    assert Gallery(lake, "people", pipeline=pipe).identify_vectors(identity_vector(RED))["faces"][0][
        "identity"] == "Alice"
    lake.close()


def test_a_wrong_key_is_refused_by_its_fingerprint(enrolled, monkeypatch, capsys):
    root, _pipe = enrolled
    monkeypatch.setenv("VISIONLAKE_KEY", base64.b64encode(os.urandom(32)).decode())
    code, _out, err = _cli(monkeypatch, capsys, root, "people")
    assert code == 6 and "wrong key" in err and "VISIONLAKE_KEY" in err
    lake = Lake(root)
    with pytest.raises(KeyProblem, match="wrong key"):
        _ = lake.cipher
    lake.close()


def test_a_lake_without_encrypted_data_still_gets_a_key_on_first_use(tmp_path, monkeypatch):
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    lake = Lake(tmp_path / "fresh")
    _ = lake.cipher
    assert (tmp_path / "fresh" / "keys" / "lake.key").exists()
    lake.close()


def _rotate_in_child(root: Path, crash_at: str | None) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VISIONLAKE_KEY", None)
    env.pop("VISIONLAKE_CRASH_AT", None)
    if crash_at:
        env["VISIONLAKE_CRASH_AT"] = crash_at
    code = textwrap.dedent(f"""
        from visionlake.keyring import rotate_lake_key
        from visionlake.lake import Lake
        rotate_lake_key(Lake({str(root)!r}, create=False), batch=1)
    """)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120).returncode


class _Killed(BaseException):
    """Stands for SIGKILL in the in-process variant (nothing after the crash point runs)."""


def _rotate_in_process(root: Path, crash_at: str | None, monkeypatch) -> int:
    from visionlake import keyring

    real = keyring.crash_point

    def crash(name: str) -> None:
        if crash_at and name == crash_at.split(":")[0]:
            raise _Killed(name)
        real(name)

    monkeypatch.setattr(keyring, "crash_point", crash)
    lake = Lake(root, create=False)
    try:
        rotate_lake_key(lake, batch=1)
        return 0
    except _Killed:
        return -9
    finally:
        lake.close()
        monkeypatch.setattr(keyring, "crash_point", real)


@pytest.mark.parametrize("crash_at,real_kill", [
    ("rotate.index_file:1", True),
    ("rotate.templates_batch:1", False),
    ("rotate.fingerprint_recorded", False),
    pytest.param("rotate.templates_batch:1", True, marks=pytest.mark.heavy),
    pytest.param("rotate.fingerprint_recorded", True, marks=pytest.mark.heavy),
])
def test_rotation_killed_midway_is_completed_by_the_rerun(enrolled, crash_at, real_kill, monkeypatch):
    root, pipe = enrolled
    old = (root / "keys" / "lake.key").read_bytes()
    if real_kill:
        assert _rotate_in_child(root, crash_at) == -9  # SIGKILL at the crash point
    else:
        assert _rotate_in_process(root, crash_at, monkeypatch) == -9
    assert (root / "keys" / "lake.key").read_bytes() == old  # the old key is kept until the end
    lake = Lake(root)
    with pytest.raises(KeyProblem, match="rotation .* was interrupted"):
        _ = lake.cipher
    lake.close()
    assert (_rotate_in_child(root, None) if real_kill else _rotate_in_process(root, None, monkeypatch)) == 0
    new = (root / "keys" / "lake.key").read_bytes()
    assert new != old and not (root / "keys" / "lake.key.new").exists()
    lake = Lake(root)
    g = Gallery(lake, "people", pipeline=pipe)
    assert [f["identity"] for f in g.identify_vectors(np.vstack([identity_vector(RED), identity_vector(BLUE)]))[
        "faces"]] == ["Alice", "Bob"]
    header = json.loads((root / "collections/people/index/faces/index.json").read_text())
    assert header["encrypted"]
    with lake.session() as s:
        assert verify_chain(s)["ok"]  # the audit MAC key was re-sealed, the chain still verifies
    lake.close()
    # the old key opens nothing any more
    (root / "keys" / "lake.key").write_bytes(old)
    lake = Lake(root)
    with pytest.raises(KeyProblem, match="wrong key"):
        _ = lake.cipher
    lake.close()
    (root / "keys" / "lake.key").write_bytes(new)  # the lake left behind must pass `check` with its key


def test_rotation_in_process_reports_what_it_did(enrolled):
    root, _pipe = enrolled
    lake = Lake(root)
    before = fingerprint(base64.b64decode((root / "keys" / "lake.key").read_bytes()))
    out = rotate_lake_key(lake)
    assert out["templates"] == 2 and out["index_files"] == 1 and not out["resumed"]
    assert out["fingerprint"] != before[:12]
    assert rotate_lake_key(lake)["templates"] == 2  # a second rotation: everything again, new key
    lake.close()
