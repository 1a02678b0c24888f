"""``visionlake bench ingest``: options and output of :func:`visionlake.bench.ingest.run_ingest_bench`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionlake.bench.ingest import run_ingest_bench
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
        out = run_ingest_bench(data, workers, purpose)
        if json_out:
            print_json(out)
        else:
            console.print(out)
