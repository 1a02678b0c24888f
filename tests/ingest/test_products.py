"""Acceptance 2 of the foundation, on the real product photos (skipped without ../shared/data).

The first ingest of all 5,050 photos is the README's main job (README command 1, ``scripts/setup.sh``).
CI runs that command on the same checkout a few minutes before the tests and says so with
``VISIONLAKE_TEST_SETUP_LAKE`` (``.ci/run``); the test then checks the run that lake recorded (the
same report the command printed, kept in ``ingest_runs``) and reruns the same command on a copy,
instead of ingesting the 5,050 photos a second and third time. Anywhere else it ingests them itself.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from visionlake.lake import Lake

#: set by CI to the lake scripts/setup.sh has just built from this checkout (README command 1)
SETUP_LAKE_ENV = "VISIONLAKE_TEST_SETUP_LAKE"


def _setup_run(products_dir: Path) -> tuple[Path, dict, Path] | None:
    """The lake README command 1 built (when CI names it), its one ingest of the product photos (the
    report it printed, as recorded) and the folder the command ran in; None when there is none to reuse."""
    named = os.environ.get(SETUP_LAKE_ENV)
    if not named:
        return None
    lake = Path(named).resolve()
    assert (lake / "catalog.sqlite").exists(), f"{SETUP_LAKE_ENV}={named} is not a lake built by scripts/setup.sh"
    con = sqlite3.connect(f"file:{lake / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        runs = con.execute("SELECT r.source, r.completed, r.stats FROM ingest_runs r JOIN collections c"
                           " ON c.id = r.collection_id WHERE c.name = 'products' ORDER BY r.id").fetchall()
    finally:
        con.close()
    cwd = lake.parent  # setup.sh runs in the repository root, the lake is ./lake (paths are kept as given)
    # reused only when it is a fresh set-up: one run, complete, of these photos (a lake set up twice, or
    # an interrupted set-up, has no single first report to check; the test then ingests by itself)
    if len(runs) != 1 or not runs[0][1] or (cwd / runs[0][0]).resolve() != products_dir.resolve():
        return None
    return lake, json.loads(runs[0][2]), cwd


@pytest.mark.heavy  # real data at size: all 5,050 product photos ingested (minutes on 2 cores)
def test_products_ingest_with_metadata_then_rerun_is_a_no_op(tmp_path, products_dir):
    styles = products_dir.parent / "styles.csv"
    lake_dir = tmp_path / "lake"
    setup = _setup_run(products_dir)
    if setup is None:
        cwd = None
        cmd = [sys.executable, "-m", "visionlake", "--lake", str(lake_dir), "ingest", str(products_dir),
               "--collection", "products", "--purpose", "plain", "--meta", str(styles), "--json"]
        first = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    else:  # README command 1 ran it: its recorded report, then the same command again on a copy
        built, first, cwd = setup
        shutil.copytree(built, lake_dir, symlinks=True)
        cmd = [sys.executable, "-m", "visionlake", "--lake", str(lake_dir), "ingest", first["source"],
               "--collection", "products", "--purpose", "fashion", "--meta",
               os.path.relpath(styles, cwd), "--json"]
    n_files = len(list(products_dir.glob("*.jpg")))
    assert first["seen"] == n_files == 5050
    assert first["rejected"] == 0
    assert first["duplicates"] > 0  # about 120 byte-identical copies in this sample
    assert first["ingested"] + first["duplicates"] == n_files
    for key in ("seen", "ingested", "duplicates", "near_duplicates", "rejected", "rejected_by_reason",
                "wall_s", "images_per_s"):
        assert key in first

    second = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=cwd).stdout)
    assert second["ingested"] == 0 and second["seen"] == n_files

    lake = Lake(lake_dir)
    one = lake.images("products", {"id": "10000"})[0]
    assert one.meta["articleType"] and one.meta["baseColour"] and one.meta["season"]
    summer_2012 = lake.images("products", {"season": "Summer", "year": 2012})
    assert summer_2012 and all(i.meta["season"] == "Summer" and i.meta["year"] == "2012" for i in summer_2012)
    tshirts = lake.images("products", {"articleType": "Tshirts", "baseColour": ["Black", "Navy Blue"]})
    assert tshirts and all(i.meta["baseColour"] in ("Black", "Navy Blue") for i in tshirts)
    # the product name with unquoted commas was repaired into one field
    assert all("," not in k for i in lake.images("products", limit=200) for k in i.meta)
