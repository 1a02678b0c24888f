"""``visionlake faces ...`` as a user runs it: messages, JSON and exit codes (fake pipeline)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from gallery_fakes import BLUE, RED, FakePipeline, huge_png_header, photo  # noqa: E402

from visionlake.cli.common import run_cli  # noqa: E402
from visionlake.cli.faces import app  # noqa: E402
from visionlake.faces import gallery  # noqa: E402


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("VISIONLAKE_KEY", raising=False)
    monkeypatch.setattr(gallery, "get_pipeline", lambda *a, **k: FakePipeline())
    lake = tmp_path / "lake"

    def run(*args: str) -> tuple[int, str, str]:
        extra = [] if args[0] == "detect" else ["--lake", str(lake)]  # detect needs no lake
        monkeypatch.setattr(sys, "argv", ["visionlake-faces", *args, *extra])
        code = run_cli(app)
        out = capsys.readouterr()
        return code, out.out, " ".join(out.err.split())  # rich wraps long messages at the terminal width

    return run


def test_enroll_people_identify_forget_round_trip(cli, tmp_path):
    a1 = photo(tmp_path / "a1.png", [(RED, 40, 40, 100)])
    a2 = photo(tmp_path / "a2.png", [(RED, 100, 50, 90)])
    code, out, err = cli("enroll", "--person", "Ada", "--consent", "form 17", str(a1), str(a2))
    assert code == 0, err
    assert "enrolled Ada" in out
    code, out, _ = cli("people", "--json")
    assert json.loads(out)["people"][0]["faces"] == 2

    group = photo(tmp_path / "g.png", [(RED, 10, 10, 90), (BLUE, 160, 20, 90)])
    code, out, _ = cli("identify", str(group), "--json")
    assert code == 0
    faces = json.loads(out)["faces"]
    assert sorted(f["identity"] for f in faces) == ["Ada", "unknown"]

    code, out, _ = cli("forget", "--person", "Ada")
    assert code == 0 and "forgot Ada" in out and "FAIL" not in out
    code, out, _ = cli("identify", str(group), "--json")
    assert [f["identity"] for f in json.loads(out)["faces"]] == ["unknown", "unknown"]
    code, out, _ = cli("audit", "--json")
    assert [e["action"] for e in json.loads(out)["entries"]][:2] == ["identify", "forget"]


def test_a_kept_probe_is_listed_by_audit_until_its_person_is_forgotten(cli, tmp_path, monkeypatch, capsys):
    """Issue 12: the kept probe was named in the chained note, which erasure can never redact."""
    assert cli("enroll", "--person", "Ada", str(photo(tmp_path / "a1.png", [(RED, 40, 40, 100)])))[0] == 0
    assert cli("enroll", "--person", "Bob", str(photo(tmp_path / "b1.png", [(BLUE, 40, 40, 100)])))[0] == 0
    kept = {}
    for who, colour in (("Ada", RED), ("Bob", BLUE)):
        code, out, err = cli("identify", str(photo(tmp_path / f"p_{who}.png", [(colour, 10, 10, 80)])),
                             "--keep-probe", "--json")
        assert code == 0, err
        kept[who] = json.loads(out)["probe_kept"]
    code, out, _ = cli("audit", "--action", "identify")
    assert code == 0 and f"probe:{kept['Ada']}" in out and f"probe:{kept['Bob']}" in out

    assert cli("forget", "--person", "Ada")[0] == 0
    code, out, _ = cli("audit", "--json")
    log = json.dumps(json.loads(out)["entries"])
    assert Path(kept["Ada"]).stem not in log and f"probe:{kept['Bob']}" in log
    assert not (tmp_path / "lake" / kept["Ada"]).exists() and (tmp_path / "lake" / kept["Bob"]).exists()
    from visionlake.cli import build_app

    monkeypatch.setattr(sys, "argv", ["visionlake", "--lake", str(tmp_path / "lake"), "audit", "verify"])
    assert run_cli(build_app()) == 0
    assert "audit log ok" in capsys.readouterr().out


def test_bad_inputs_get_one_line_and_the_right_exit_code(cli, tmp_path):
    face = photo(tmp_path / "a.png", [(RED, 40, 40, 100)])
    assert cli("enroll", "--person", "Ada", str(face))[0] == 0
    none = photo(tmp_path / "none.png", [])
    code, _out, err = cli("identify", str(none))
    assert code == 2 and "no face found in" in err and "Traceback" not in err

    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    code, _out, err = cli("identify", str(corrupt))
    assert code == 2 and "broken.jpg" in err

    huge = tmp_path / "huge.png"
    huge.write_bytes(huge_png_header())
    code, _out, err = cli("enroll", "--person", "Bob", str(huge))
    assert code == 2 and "too_many_pixels" in err

    two = photo(tmp_path / "two.png", [(RED, 10, 10, 80), (BLUE, 150, 10, 80)])
    code, _out, err = cli("enroll", "--person", "Bob", str(two))
    assert code == 2 and "2 faces found" in err and "--largest" in err
    tiny = photo(tmp_path / "tiny.png", [(BLUE, 10, 10, 10)])
    code, _out, err = cli("enroll", "--person", "Bob", str(tiny))
    assert code == 2 and "too small" in err

    code, _out, err = cli("forget", "--person", "Nobody")
    assert code == 3 and "no person named 'Nobody'" in err
    code, _out, err = cli("identify", str(face), "--collection", "nope")
    assert code == 3 and "no collection named 'nope'" in err
    code, _out, err = cli("verify", str(face), str(face), "--far", "5")
    assert code == 2 and "--far" in err
    # nothing half-written by the failures: Ada is the only person
    code, out, _ = cli("people", "--json")
    assert [p["name"] for p in json.loads(out)["people"]] == ["Ada"]


def test_detect_and_verify_json(cli, tmp_path):
    a = photo(tmp_path / "a.png", [(RED, 40, 40, 100), (BLUE, 200, 20, 60)])
    b = photo(tmp_path / "b.png", [(RED, 10, 10, 90)])
    code, out, _ = cli("detect", str(a), "--json")
    img = json.loads(out)["images"][0]
    assert code == 0 and len(img["faces"]) == 2 and len(img["faces"][0]["landmarks"]) == 5
    assert img["faces"][0]["box"] == [40, 40, 140, 140]
    code, out, _ = cli("verify", str(a), str(b), "--json")
    res = json.loads(out)
    assert code == 0 and res["same"] is True and res["audited"] is False  # no lake there yet: none created
    assert not (tmp_path / "lake").exists()


def test_cluster_and_groups_commands(cli, tmp_path, monkeypatch):
    from visionlake.faces import cluster as fc

    monkeypatch.setitem(fc.CLUSTER_THRESHOLDS, "fake-v1", 0.6)
    monkeypatch.setitem(__import__("visionlake.faces.thresholds", fromlist=["x"]).CALIBRATED, "fake-v1",
                        {1e-3: 0.6, 1e-4: 0.7})
    a = photo(tmp_path / "a.png", [(RED, 40, 40, 100)])
    assert cli("enroll", "--person", "Ada", "--collection", "club", str(a))[0] == 0
    # faces enrolled are never grouped; nothing else is there
    code, out, _ = cli("cluster", "--collection", "club", "--json")
    assert code == 0 and json.loads(out)["new_faces"] == 0
    code, _out, err = cli("rename-group", "42", "x", "--collection", "club")
    assert code == 3 and "no face group 42" in err
