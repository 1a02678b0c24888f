"""The CLI as a new user meets it (issue 14, items 1, 2, 7, 8, 9): one spelling of options, help that
reads well, tables that never cut their key column, ``--json`` wherever a table is printed, progress
on stderr, and the public Python names meaning what they say.

These walk the whole command tree, so commands added later are held to the same rules.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import numpy as np
import pytest
import typer

from visionlake.cli import build_app
from visionlake.cli.common import COLLECTION_FLAGS, tidy_help


def _tree():
    root = tidy_help(typer.main.get_command(build_app()))
    out = []

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out.append((" ".join(path), cmd))

    walk(root, [])
    return root, out


ROOT, COMMANDS = _tree()


def _run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from visionlake.cli.common import run_cli

    monkeypatch.setattr(sys, "argv", ["visionlake", *args])
    code = run_cli(build_app())
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_collection_option_is_spelled_c_and_collection():
    seen = 0
    for path, cmd in COMMANDS:
        for p in cmd.params:
            if p.name in ("collection", "collections") and getattr(p, "param_type_name", "") == "option":
                seen += 1
                assert set(COLLECTION_FLAGS) <= set(p.opts), f"{path}: {p.opts}"
    assert seen >= 15


def test_face_commands_default_to_people():
    for path, cmd in COMMANDS:
        if path.startswith("faces ") and path != "faces audit":
            params = {p.name: p for p in cmd.params}
            if "collection" in params:
                assert params["collection"].default == "people", path
                assert not params["collection"].required, path


def test_every_command_has_help_and_flags_show_no_metavar():
    for path, cmd in COMMANDS:
        assert (cmd.help or "").strip(), f"'{path}' has no help text"
        for p in cmd.params:
            if getattr(p, "param_type_name", "") == "option" and getattr(p, "is_flag", False):
                assert not p.display_type_rich(None), f"'{path} {p.opts[0]}' shows {p.display_type_rich(None)!r}"


def test_help_as_printed(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = _run(monkeypatch, capsys, "fashion", "search", "--help")
    assert code == 0
    assert "-c " in out and "--collection" in out
    assert "<bool>" not in out and "--json" in out


def test_commands_that_print_tables_have_json():
    for path, cmd in COMMANDS:
        try:
            src = inspect.getsource(cmd.callback)
        except (OSError, TypeError):
            continue
        if "Table(" in src or "cli_table(" in src or "_show_series(" in src or "_print_report(" in src:
            names = {o for p in cmd.params for o in getattr(p, "opts", [])}
            assert "--json" in names, f"'{path}' prints a table but has no --json"


# ------------------------------------------------------------------------------------------ tables
@pytest.fixture
def small_lake(tmp_path, monkeypatch):
    from PIL import Image

    from visionlake.ingest import ingest
    from visionlake.lake import Lake

    photos = tmp_path / "photos"
    photos.mkdir()
    long_name = "a_really_long_product_photo_name_that_would_not_fit_in_eighty_columns_0001.png"
    for i, name in enumerate([long_name, "b.png", "c.png"]):
        Image.new("RGB", (64, 48), (40 * i, 100, 200)).save(photos / name)
    lk = Lake(tmp_path / "lake")
    lk.create_collection("plain", "plain")
    ingest(lk, photos, "plain", workers=0)
    lk.close()
    monkeypatch.setenv("VISIONLAKE_LAKE", str(tmp_path / "lake"))
    return {"lake": tmp_path / "lake", "long": str(photos / long_name)}


def test_images_list_says_how_many_of_how_many_and_keeps_the_whole_path(small_lake, monkeypatch, capsys):
    from visionlake.cli.common import console

    monkeypatch.setattr(console, "width", 80)  # a narrow terminal
    code, out, _ = _run(monkeypatch, capsys, "images", "list", "-c", "plain", "--limit", "2")
    assert code == 0
    assert "2 of 3 image(s)" in out
    assert "--offset 2" in out
    assert "…" not in out
    lines = [ln for ln in out.splitlines() if ln.count("│") >= 4]
    column = "".join(ln.split("│")[2].strip() for ln in lines)
    assert small_lake["long"] in column  # folded over several lines, never cut


def test_images_list_json_has_the_total(small_lake, monkeypatch, capsys):
    import json

    code, out, _ = _run(monkeypatch, capsys, "images", "list", "-c", "plain", "--limit", "1", "--json")
    body = json.loads(out)
    assert code == 0 and body["total"] == 3 and len(body["images"]) == 1


def test_where_key_with_nul_is_bad_input_not_a_crash(small_lake, monkeypatch, capsys):
    code, _, err = _run(monkeypatch, capsys, "images", "list", "-c", "plain", "--where", "a\x01b=1")
    assert code == 2 and "control characters" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------- progress
def test_progress_goes_to_stderr_in_a_pipe(capsys):
    from visionlake.cli.common import Heartbeat, progress_status

    with progress_status("embedding", total=3) as advance:
        for _ in range(3):
            advance(1)
    hb = Heartbeat("visionlake bench lfw")
    hb.DELAY_S, hb.EVERY_S = 0.05, 0.1
    hb.start()
    import time

    time.sleep(0.4)
    hb.stop()
    out = capsys.readouterr()
    assert out.out == ""  # stdout stays clean for --json
    assert "embedding" in out.err and "visionlake bench lfw: still working" in out.err


# -------------------------------------------------------------------------------------- public API
def test_vl_ingest_is_the_function_even_after_the_subpackage_is_imported(tmp_path):
    from PIL import Image

    import visionlake as vl

    lake = vl.Lake(tmp_path / "lake")
    import visionlake.ingest.pipeline  # noqa: F401 - what vl.Lake and the CLI do

    assert callable(vl.ingest) and not isinstance(vl.ingest, type(sys))
    (tmp_path / "p").mkdir()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(tmp_path / "p" / "x.png")
    lake.create_collection("c", "plain")
    assert vl.ingest(lake, tmp_path / "p", "c", workers=0)["ingested"] == 1
    from visionlake.ingest import REASONS, ingest  # the subpackage stays importable

    assert REASONS and callable(ingest)
    lake.close()


def test_compare_faces_tolerance_is_a_distance():
    from visionlake.faces import compare_faces, face_distance

    params = inspect.signature(compare_faces).parameters
    assert "tolerance" in params and "threshold" not in params
    a = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    b = np.array([0.96, 0.28, 0.0], dtype=np.float32)  # cosine 0.96, distance 0.04
    known = [a, b]
    assert np.allclose(face_distance(known, a), [0.0, 0.04], atol=1e-6)
    assert compare_faces(known, a, tolerance=0.05) == [True, True]
    assert compare_faces(known, a, tolerance=0.01) == [True, False]  # lower is stricter


def test_face_locations_documents_face_recognition_order():
    from visionlake.faces import face_locations

    assert "(top, right, bottom, left)" in (face_locations.__doc__ or "")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "(left, top, right, bottom), ...]" not in readme


def test_trends_report_writes_under_reports_which_git_ignores():
    from visionlake.cli.trends import default_report_path

    assert default_report_path("products") == Path("reports") / "trends-products.html"
    assert default_report_path("street looks.csv") == Path("reports") / "trends-street-looks.html"
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().split()
    assert "/reports/" in ignored


@pytest.mark.heavy
@pytest.mark.shared_data
def test_enrolling_already_ingested_photos_reports_their_faces(lfw_dir, tmp_path, monkeypatch, capsys):
    """Issue 14.6: it said 'Enrolled Pete Sampras (0 face(s))' while the person had 2 faces."""
    from visionlake.ingest import ingest
    from visionlake.lake import Lake

    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted((lfw_dir / "images" / "Pete_Sampras").glob("*.jpg"))[:2]:
        (photos / p.name).symlink_to(p)
    lk = Lake(tmp_path / "lake")
    lk.create_collection("people", "faces")
    ingest(lk, photos, "people", workers=0)
    lk.close()
    monkeypatch.setenv("VISIONLAKE_LAKE", str(tmp_path / "lake"))
    code, out, err = _run(monkeypatch, capsys, "faces", "enroll", "--person", "Pete Sampras", "--jitters", "0",
                          *[str(p) for p in sorted(photos.iterdir())])
    assert code == 0, err
    assert "2 face(s) from 2 photo(s) (2 already in the lake, 0 new)" in " ".join(out.split())
