"""Acceptance 2 of the foundation, on the real product photos (skipped without ../shared/data)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from visionlake.lake import Lake


@pytest.mark.heavy  # real data at size: all 5,050 product photos ingested twice (minutes on 2 cores)
def test_products_ingest_with_metadata_then_rerun_is_a_no_op(tmp_path, products_dir):
    styles = products_dir.parent / "styles.csv"
    lake_dir = tmp_path / "lake"
    cmd = [sys.executable, "-m", "visionlake", "--lake", str(lake_dir), "ingest", str(products_dir),
           "--collection", "products", "--purpose", "plain", "--meta", str(styles), "--json"]
    first = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    n_files = len(list(products_dir.glob("*.jpg")))
    assert first["seen"] == n_files == 5050
    assert first["rejected"] == 0
    assert first["duplicates"] > 0  # about 120 byte-identical copies in this sample
    assert first["ingested"] + first["duplicates"] == n_files
    for key in ("seen", "ingested", "duplicates", "near_duplicates", "rejected", "rejected_by_reason",
                "wall_s", "images_per_s"):
        assert key in first

    second = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
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
