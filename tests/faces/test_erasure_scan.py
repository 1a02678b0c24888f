"""The byte scanner behind the erasure verification, as a module (it used to be a string run with -c)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from visionlake.faces import erasure_scan
from visionlake.faces.erasure import name_pattern, scan_files_for

REPO = Path(__file__).resolve().parents[2]


def test_pattern_straddling_two_blocks_is_found(tmp_path):
    f = tmp_path / "blob.bin"
    needle = bytes(range(40, 72))  # 32 bytes, like a short template
    f.write_bytes(b"\0" * 10 + needle + b"\0" * 10)
    for block in (7, 16, 25, 1 << 20):  # the needle crosses block edges for the small ones
        assert erasure_scan.scan_file(str(f), {"t": needle}, block=block) == {"t"}, block
        assert erasure_scan.scan_file(str(f), {"t": needle[::-1]}, block=block) == set(), block


def test_name_is_matched_as_a_whole_word_only(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"enrolled: Anna Karenina")
    (tmp_path / "b.txt").write_bytes(b"x Ann, y")
    hits, scanned = erasure_scan.scan([str(tmp_path)], {"name": name_pattern("Ann")})
    assert scanned == 2 and hits == ["b.txt: name"]


def test_skipped_folder_unreadable_file_and_a_second_root(tmp_path):
    lake, engine = tmp_path / "lake", tmp_path / "engine.db"
    (lake / "keys").mkdir(parents=True)
    (lake / "keys" / "lake.key").write_bytes(b"SECRET")  # the key folder is never read
    (lake / "data.bin").write_bytes(b"..SECRET..")
    (engine / "segments").mkdir(parents=True)
    (engine / "segments" / "seg1").write_bytes(b"SECRET")
    locked = lake / "locked.bin"
    locked.write_bytes(b"SECRET")
    os.chmod(locked, 0)
    try:
        readable = os.access(locked, os.R_OK)  # root reads anything
        hits, scanned = erasure_scan.scan([str(lake), str(engine)], {"s": b"SECRET"}, skip=["keys"])
    finally:
        os.chmod(locked, 0o600)
    want = {"data.bin: s", f"{engine / 'segments' / 'seg1'}: s"} | ({"locked.bin: s"} if readable else set())
    assert set(hits) == want
    assert scanned == len(want)


def test_patterns_survive_the_json_job_encoding():
    pats = {"b": b"\x00\xffabc", "r": re.compile(rb"(?<![A-Za-z])Zo\xc3\xab(?![A-Za-z])", re.I)}
    back = erasure_scan.decode_patterns(json.loads(json.dumps(erasure_scan.encode_patterns(pats))))
    assert back["b"] == pats["b"]
    assert back["r"].pattern == pats["r"].pattern and back["r"].flags == pats["r"].flags


def test_runs_as_a_module_and_as_an_isolated_file(tmp_path):
    (tmp_path / "catalog.sqlite").write_bytes(b"... Ada Lovelace ...")
    job = json.dumps({"roots": [str(tmp_path)], "skip": ["keys"],
                      "patterns": erasure_scan.encode_patterns({"name": name_pattern("Ada Lovelace")})})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    by_module = subprocess.run([sys.executable, "-m", "visionlake.faces.erasure_scan"], input=job, text=True,
                               capture_output=True, env=env, timeout=120)
    assert by_module.returncode == 0, by_module.stderr
    assert json.loads(by_module.stdout) == {"hits": ["catalog.sqlite: name"], "scanned": 1}
    # what erasure runs: the same file with -I -S (no site packages, no environment)
    assert scan_files_for([tmp_path], {"name": name_pattern("Ada Lovelace")}) == (["catalog.sqlite: name"], 1)
