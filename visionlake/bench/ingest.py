"""``visionlake bench ingest``: images/s and peak RSS of ingestion with the thumbnail analyser."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from visionlake.cli.common import JsonOption, console, print_json


def register(app: typer.Typer) -> None:
    """Add ``bench ingest`` to the bench group."""

    @app.command("ingest")
    def bench_ingest(
        data: Annotated[Path, typer.Option(help="Folder of images (e.g. ../shared/data/fashion_products/images).")],
        workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")] = None,
        purpose: Annotated[str, typer.Option(help="Collection purpose (plain = thumbnails only).")] = "plain",
        json_out: JsonOption = False,
    ) -> None:
        """Ingest DATA into a throw-away lake and report throughput and memory."""
        from visionlake.bench.memory import PeakRSS
        from visionlake.errors import BadInput
        from visionlake.ingest import ingest
        from visionlake.lake import Lake

        if not data.exists():
            raise BadInput(f"{data} does not exist (set --data or VISIONLAKE_DATA)")
        with tempfile.TemporaryDirectory(prefix="vl-bench-") as tmp:
            lake = Lake(Path(tmp) / "lake")
            lake.create_collection("bench", purpose)
            with PeakRSS() as mem:
                report = ingest(lake, data, "bench", workers=workers)
            out = {
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
        if json_out:
            print_json(out)
        else:
            console.print(out)
