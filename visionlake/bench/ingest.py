"""``visionlake bench ingest``: ingest a folder into a throw-away lake, report throughput and memory."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from visionlake.bench.memory import PeakRSS
from visionlake.errors import BadInput


def run_ingest_bench(data: Path, workers: int | None = None, purpose: str = "plain") -> dict[str, Any]:
    """Ingest ``data`` into a temporary lake (deleted afterwards); images/s and peak RSS against the goal."""
    from visionlake.ingest import ingest
    from visionlake.lake import Lake

    if not data.exists():
        raise BadInput(f"{data} does not exist (set --data or VISIONLAKE_DATA)")
    with tempfile.TemporaryDirectory(prefix="vl-bench-") as tmp:
        lake = Lake(Path(tmp) / "lake")
        lake.create_collection("bench", purpose)
        with PeakRSS() as mem:
            report = ingest(lake, data, "bench", workers=workers)
        return {
            "images": report["seen"],
            "ingested": report["ingested"],
            "duplicates": report["duplicates"],
            "rejected": report["rejected"],
            "wall_s": report["wall_s"],
            "images_per_s": report["images_per_s"],
            "peak_rss_mb": mem.peak_mb,
            "workers": report["workers"],
            "purpose": purpose,
            "goal": {"images_per_s": 300, "peak_rss_mb": 1000},
        }
