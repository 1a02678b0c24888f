"""Issue 12: ``visionlake check`` passes on every lake the tests leave behind, in every test area,
including lakes the tests build with their own fixtures and lakes only a subprocess made (the CLI).

The suite's conftest checks them at teardown; this runs pytest on a tiny suite with that conftest to
show that a lake left damaged fails its test, in a function or a module fixture, whether the test
process opened it or it is only found on disk, and that the ``damages_lake`` marker exempts a test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from visionlake.check import check_lake
from visionlake.lake import Lake

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

INNER = '''
import shutil

import pytest
from visionlake.lake import Lake


def damage(root):
    lk = Lake(root)
    lk.create_collection("c", "plain")
    lk.close()
    (root / "lake.json").write_text("{not json")


def copy_elsewhere(folder):
    """A lake this process never opens where it lies, as one a ``visionlake`` subprocess made."""
    src = folder / "src"
    Lake(src).close()
    shutil.copytree(src, folder / "made" / "by" / "cli")
    return folder / "made" / "by" / "cli"


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


def test_left_whole(own_lake, shared, tmp_path):
    Lake(shared, create=False).close()
    copy_elsewhere(tmp_path)


def test_left_damaged(tmp_path):
    damage(tmp_path / "lake")


@pytest.mark.damages_lake
def test_damaged_on_purpose(tmp_path):
    damage(tmp_path / "lake")


def test_copy_left_damaged(tmp_path):
    (copy_elsewhere(tmp_path) / "lake.json").write_text("[")


@pytest.mark.damages_lake
def test_copy_damaged_on_purpose(tmp_path):
    (copy_elsewhere(tmp_path) / "lake.json").write_text("[")


def test_damages_the_module_lake(shared):
    (shared / "lake.json").write_text("")
'''

#: A module whose module fixture leaves a lake made "by a subprocess" in a ``tmp_path_factory`` folder.
MODULE_COPY = '''
import shutil

import pytest
from visionlake.lake import Lake


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    src = tmp_path_factory.mktemp("src") / "lake"
    Lake(src).close()
    dst = tmp_path_factory.mktemp("made") / "lake"
    shutil.copytree(src, dst)
    return dst


def test_reads_it(made):
    assert (made / "lake.json").exists()


def test_damages_it(made):
    (made / "lake.json").write_text("")
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


@pytest.mark.damages_lake  # the inner suite damages lakes on purpose, under this test's tmp_path
def test_lakes_left_by_tests_of_every_area_are_checked_at_teardown(warm, pytester) -> None:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    damages_lake: on purpose\n")
    for area in ("faces", "fashion"):
        pytester.mkdir(area)
        (pytester.path / area / f"test_{area}_inner.py").write_text(INNER)
    pytester.mkdir("cli")
    (pytester.path / "cli" / "test_cli_inner.py").write_text(MODULE_COPY)
    res = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    outcomes = res.parseoutcomes()
    errors = [line for line in res.outlines if line.startswith("ERROR ")]
    # every area: a damaged lake fails its test at teardown, whether the test opened it or only found it
    # on disk (made elsewhere, as by the CLI in a subprocess), and a damaged module lake fails the
    # module's last test; damages_lake tests and whole lakes pass
    assert sorted(e.split(" - ")[0] for e in errors) == [
        "ERROR cli/test_cli_inner.py::test_damages_it",
        *(f"ERROR {area}/test_{area}_inner.py::{name}" for area in ("faces", "fashion")
          for name in ("test_copy_left_damaged", "test_damages_the_module_lake", "test_left_damaged")),
    ], res.outlines
    assert outcomes["passed"] == 14 and outcomes["errors"] == 7
    assert any("visionlake check fails on lakes" in line and "lake.json" in line for line in res.outlines)
    assert any("visionlake check at teardown:" in line for line in res.outlines)  # its cost is shown
