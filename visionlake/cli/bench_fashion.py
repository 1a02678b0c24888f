"""``visionlake bench fashion``: options and output of :func:`visionlake.bench.fashion.run_fashion`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionlake.bench.fashion import COLOUR_TRAIN_IDS, run_fashion
from visionlake.cli.common import print_json


def register(app: typer.Typer) -> None:
    """Add ``bench fashion`` to the ``visionlake bench`` group."""

    @app.command("fashion")
    def bench_fashion(
        data: Annotated[Path | None, typer.Option(help="fashion_products folder (images/ + styles.csv).")] = None,
        id_range: Annotated[tuple[int, int] | None, typer.Option("--id-range", help="Only ids LO..HI.")] = None,
        colour_train_range: Annotated[tuple[int, int], typer.Option(
            "--colour-train-range", help="Ids the learned colour head trains on (never scored).")
        ] = COLOUR_TRAIN_IDS,
        limit: Annotated[int | None, typer.Option(help="At most this many photos for colour.")] = None,
        tag_images: Annotated[int, typer.Option(help="Photos timed for throughput.")] = 32,
        batch_size: Annotated[int, typer.Option(help="ONNX batch size.")] = 16,
        train_images: Annotated[int, typer.Option(help="Photos used for the heads' cross-validation.")] = 600,
        search_vectors: Annotated[int, typer.Option(help="Synthetic vectors for search latency.")] = 100_000,
        model_dir: Annotated[str | None, typer.Option("--model-dir", envvar="VISIONLAKE_FASHION_MODEL",
                                                      help="Real model folder for the train part.")] = None,
        skip: Annotated[list[str] | None,
                        typer.Option(help="Parts to skip: colour, throughput, train, search, backbone.")] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON (always JSON).")] = True,
    ) -> None:
        """Colour accuracy, tagging throughput vs plain open_clip, heads' cross-validation, search latency,
        and the offline backbone's heads and search (trained outside --id-range, scored inside)."""
        print_json(run_fashion(data, tuple(id_range) if id_range else None, limit, tag_images, batch_size,
                               train_images, search_vectors, model_dir, frozenset(skip or []),
                               tuple(colour_train_range)))
