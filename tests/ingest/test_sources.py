"""Sources other than a folder walk: manifests (CSV/Parquet), stdin, globs, metadata joins."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
from PIL import Image

from visionlake.ingest import ingest
from visionlake.ingest.sources import MetaTable, read_table


def _write_images(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)).resize((40, 40)).save(folder / f"{i}.png")


def test_csv_and_parquet_manifests_carry_metadata(lake, tmp_path):
    _write_images(tmp_path / "imgs", 4)
    pd.DataFrame({"path": [f"imgs/{i}.png" for i in range(2)], "city": ["Paris", "Milan"]}).to_csv(
        tmp_path / "m.csv", index=False)
    pd.DataFrame({"uri": [f"file://{tmp_path}/imgs/{i}.png" for i in (2, 3)], "city": ["Rome", "Oslo"]}).to_parquet(
        tmp_path / "m.parquet")
    lake.create_collection("c", "plain")
    assert ingest(lake, tmp_path / "m.csv", "c", workers=0)["ingested"] == 2
    assert ingest(lake, tmp_path / "m.parquet", "c", workers=0)["ingested"] == 2
    assert {i.meta["city"] for i in lake.images("c")} == {"Paris", "Milan", "Rome", "Oslo"}
    assert [i.path.endswith("1.png") for i in lake.images("c", {"city": "Milan"})] == [True]


def test_stdin_list_of_paths_and_include_exclude(tmp_path):
    _write_images(tmp_path / "imgs", 5)
    lake_dir = tmp_path / "lake"
    paths = "\n".join(str(tmp_path / "imgs" / f"{i}.png") for i in range(3)) + "\n\n"
    base = [sys.executable, "-m", "visionlake", "--lake", str(lake_dir), "ingest"]
    out = subprocess.run(base + ["-", "-c", "s", "--purpose", "plain", "--json", "--workers", "0"], input=paths,
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["ingested"] == 3
    out = subprocess.run(base + [str(tmp_path / "imgs"), "-c", "g", "--purpose", "plain", "--json",
                                 "--include", "*.png", "--exclude", "4.png", "--workers", "0"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["ingested"] == 4


def test_styles_csv_with_unquoted_commas_is_repaired(tmp_path):
    (tmp_path / "styles.csv").write_text(
        "id,gender,articleType,productDisplayName\n"
        "1,Men,Shirts,Plain shirt\n"
        "2,Women,Tops,Top, with, commas\n"
    )
    rows = list(read_table(tmp_path / "styles.csv"))
    assert rows[1]["productDisplayName"] == "Top, with, commas"
    table = MetaTable(tmp_path / "styles.csv")
    assert table.lookup("/x/y/2.jpg")["articleType"] == "Tops"
    assert table.lookup("/x/y/3.jpg") == {}


def test_cli_errors_are_one_line_with_exit_codes(tmp_path, monkeypatch, capsys):
    """In this process (the CLI's own entry, ``run_cli``), except the first error: a real process shows
    that the exit code reaches the shell."""
    from visionlake.cli import build_app
    from visionlake.cli.common import run_cli

    lake_dir = tmp_path / "lake"

    def run(*a: str) -> subprocess.CompletedProcess[str]:
        monkeypatch.setattr(sys, "argv", ["visionlake", "--lake", str(lake_dir), *a])
        code = run_cli(build_app())
        out = capsys.readouterr()
        return subprocess.CompletedProcess(a, code, out.out, out.err)

    assert run("init").returncode == 0
    r = subprocess.run([sys.executable, "-m", "visionlake", "--lake", str(lake_dir), "ingest", str(tmp_path), "-c",
                        "nope"], capture_output=True, text=True)
    assert r.returncode == 3 and "no collection named 'nope'" in r.stderr and "Traceback" not in r.stderr
    assert run("collections", "create", "a", "--purpose", "faces").returncode == 0
    r = run("collections", "create", "a")
    assert r.returncode == 4 and "already exists" in r.stderr
    r = run("collections", "create", "b", "--purpose", "cats")
    assert r.returncode == 2 and "unknown purpose" in r.stderr
    listed = json.loads(run("collections", "list", "--json").stdout)
    assert [c["name"] for c in listed] == ["a"]
    info = json.loads(run("info", "--json").stdout)
    assert info["collections"][0]["purpose"] == "faces"
    assert run("collections", "delete", "a", "--yes").returncode == 0
    assert json.loads(run("collections", "list", "--json").stdout) == []
