"""The trends CLI end to end on a small table; bad input gives one line, an exit code, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from visionlake.cli import app
from visionlake.cli.common import run_cli

from .conftest import make_looks


def run(args: list[str], capsys) -> tuple[int, str, str]:
    old = sys.argv
    sys.argv = ["visionlake", *args]
    try:
        code = run_cli(app)
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def table(tmp_path: Path) -> Path:
    p = tmp_path / "looks.csv"
    make_looks(n_months=30, per_month=40).to_csv(p, index=False)
    return p


def test_from_table_json_and_out(table: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "series.parquet"
    code, stdout, _ = run(["trends", "from-table", str(table), "--time", "created", "--segment", "city",
                           "--attributes", "fabric,knit", "--by", "season", "--out", str(out), "--json"], capsys)
    assert code == 0
    body = json.loads(stdout[stdout.index("{"):])
    assert body["by"] == "season" and body["rows"][0]["unique_id"].startswith("city=")
    df = pd.read_parquet(out)
    assert {"unique_id", "ds", "y", "count", "n", "lo", "hi", "low_support"} <= set(df.columns)


def test_signals_and_forecast(table: Path, capsys) -> None:
    code, stdout, _ = run(["trends", "signals", "--table", str(table), "--time", "created",
                           "--attribute", "fabric,length,knit", "--top", "5", "--json"], capsys)
    assert code == 0
    body = json.loads(stdout)
    assert body["rising"][0]["unique_id"] == "fabric=satin"
    assert body["lift"]
    assert all(r["summary"] and "nan" not in r["summary"].lower() for r in body["signals"])
    code, stdout, _ = run(["trends", "forecast", "--table", str(table), "--time", "created", "--by", "month",
                           "--attribute", "fabric", "--horizon", "12", "--json"], capsys)
    assert code == 0
    body = json.loads(stdout, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    assert len(body["rows"]) == 3 * 12 and body["choice"]
    for r in body["rows"]:  # real intervals: finite, ordered, inside [0, 1], not a point
        assert 0 <= r["lo-95"] <= r["lo-80"] <= r["mean"] <= r["hi-80"] <= r["hi-95"] <= 1
        assert r["hi-95"] > r["lo-95"]


@pytest.mark.parametrize(
    "content, extra, message",
    [
        ("", ["--attributes", "fabric"], "cannot read"),
        ("created,fabric\n", ["--attributes", "fabric"], "no rows"),
        ("created,fabric\nsoon,satin\nlater,denim\n", ["--attributes", "fabric"], "does not parse"),
        ("created,fabric\n2024-01-01,satin\n", ["--attributes", "colour"], "unknown column"),
    ],
)
def test_bad_input_one_line(tmp_path: Path, capsys, content: str, extra: list[str], message: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(content)
    code, _, err = run(["trends", "from-table", str(p), "--time", "created", *extra], capsys)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_single_period_forecast_and_missing_source(tmp_path: Path, capsys) -> None:
    p = tmp_path / "one.csv"
    p.write_text("created,fabric\n2024-01-01,satin\n2024-01-02,denim\n")
    code, _, err = run(["trends", "forecast", "--table", str(p), "--time", "created", "--attributes", "fabric",
                        "--by", "month"], capsys)
    assert code == 2 and "one month" in err
    code, _, err = run(["trends", "series", "--time", "created"], capsys)
    assert code == 2 and "--collection" in err


def test_collection_without_tags_is_clear(tmp_path: Path) -> None:
    # a real process, as a user runs it: the lake exists, the collection has no fashion tags
    lake = tmp_path / "lake"
    env = {"VISIONLAKE_LAKE": str(lake), "PATH": "/usr/bin:/bin"}
    from visionlake.lake import Lake

    Lake(lake).create_collection("looks", purpose="fashion")
    r = subprocess.run([sys.executable, "-m", "visionlake", "trends", "series", "--collection", "looks"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "no fashion tags" in r.stderr and "Traceback" not in r.stderr
