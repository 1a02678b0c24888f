"""The Myntra-style ``styles.csv`` label file, read without pandas (the CLI starts without loading it).

Used by the catalogue trend sets (:mod:`visionlake.trends.datasets`) and the fashion benchmarks.
"""

from __future__ import annotations

from pathlib import Path


def read_styles(path: Path) -> dict[int, dict[str, str]]:
    """styles.csv rows by id; the ~22 rows with unquoted commas in the name keep fields 0..8 intact."""
    cols = ["id", "gender", "masterCategory", "subCategory", "articleType", "baseColour", "season", "year",
            "usage", "productDisplayName"]
    out: dict[int, dict[str, str]] = {}
    with open(path, encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            parts = line.rstrip("\n").split(",")
            if len(parts) < 9 or not parts[0].isdigit():
                continue
            parts = parts[:9] + [",".join(parts[9:])]
            out[int(parts[0])] = dict(zip(cols, parts, strict=True))
    return out
