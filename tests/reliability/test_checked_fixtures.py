"""Issue 12: ``visionlake check`` passes on every lake the tests leave behind, including the lakes the
faces and service tests build with their own fixtures (not the shared ``lake`` fixture).

The suite's conftest checks them at teardown; this runs pytest on a tiny suite with that conftest to
show that a lake left damaged fails its test, in a function or a module fixture, and that the
``damages_lake`` marker and the other areas are left alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from visionlake.check import check_lake
from visionlake.lake import Lake

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

INNER = '''
import pytest
from visionlake.lake import Lake


def damage(root):
    lk = Lake(root)
    lk.create_collection("c", "plain")
    lk.close()
    (root / "lake.json").write_text("{not json")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("m") / "lake"
    lk = Lake(root)
    lk.close()
    return root


@pytest.fixture
def own_lake(tmp_path):
    lk = Lake(tmp_path / "lake")
    yield lk
    lk.close()


def test_left_whole(own_lake, shared):
    Lake(shared, create=False).close()


def test_left_damaged(tmp_path):
    damage(tmp_path / "lake")


@pytest.mark.damages_lake
def test_damaged_on_purpose(tmp_path):
    damage(tmp_path / "lake")


def test_damages_the_module_lake(shared):
    (shared / "lake.json").write_text("")
'''


@pytest.fixture(scope="module")
def warm(tmp_path_factory) -> None:
    """Import what the inner tests use before ``pytester`` snapshots ``sys.modules``: it forgets the
    modules first imported by an in-process run, and a catalog table module imported twice fails."""
    root = tmp_path_factory.mktemp("warm") / "lake"
    lk = Lake(root)
    lk.create_collection("c", "plain")
    lk.close()
    assert check_lake(root)["ok"]


def test_lakes_left_by_faces_and_service_tests_are_checked_at_teardown(warm, pytester) -> None:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    damages_lake: on purpose\n")
    for area in ("faces", "fashion"):
        pytester.mkdir(area)
        (pytester.path / area / f"test_{area}_inner.py").write_text(INNER)
    res = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    outcomes = res.parseoutcomes()
    errors = [line for line in res.outlines if line.startswith("ERROR ")]
    # faces: the damaged test fails at teardown, and the damaged module lake fails the module's last test
    assert sorted(e.split(" - ")[0] for e in errors) == [
        "ERROR faces/test_faces_inner.py::test_damages_the_module_lake",
        "ERROR faces/test_faces_inner.py::test_left_damaged",
    ], res.outlines
    assert outcomes["passed"] == 8 and outcomes["errors"] == 2
    assert any("visionlake check fails on lakes" in line and "lake.json" in line for line in res.outlines)
