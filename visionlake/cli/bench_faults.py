"""``visionlake bench faults``: options and output of :func:`visionlake.bench.faults.run_faults`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from visionlake.bench.faults import run_faults
from visionlake.cli.common import JsonOption, console, print_json


def register(app: typer.Typer) -> None:
    """Add ``bench faults`` to the bench group."""

    @app.command("faults")
    def bench_faults(
        kills: Annotated[int, typer.Option(help="Ingest runs killed with SIGKILL.")] = 10,
        images: Annotated[int, typer.Option(help="Synthetic photos per collection (two collections).")] = 120,
        workers: Annotated[int, typer.Option(help="Ingest worker processes (0: in-process).")] = 1,
        seed: Annotated[int, typer.Option(help="Seed of kill moments, crash points and photos.")] = 0,
        json_out: JsonOption = False,
    ) -> None:
        """Random kills during a mixed ingest; report kills, images/vectors lost, duplicates, recovery time."""
        with tempfile.TemporaryDirectory(prefix="vl-faults-") as tmp:
            out = run_faults(kills, images, workers, seed, Path(tmp))
        if json_out:
            print_json(out)
        else:
            for k, v in out.items():
                console.print(f"{k}: {v}")
