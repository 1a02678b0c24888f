"""``visionlake bench scale``: options and output of :func:`visionlake.bench.scale.bench_scale`."""

from __future__ import annotations

from typing import Annotated

import typer

from visionlake.bench.scale import bench_scale
from visionlake.cli.common import JsonOption, console, print_json
from visionlake.errors import BadInput


def register(app: typer.Typer) -> None:
    """Add ``bench scale`` to the bench group."""

    @app.command("scale")
    def scale(
        vectors: Annotated[int, typer.Option(help="Gallery size (10,000,000 fits in 8 GB as ivfpq).")] = 1_000_000,
        dim: Annotated[int, typer.Option(help="Template dimension (dlib: 128).")] = 128,
        index: Annotated[str, typer.Option(help="faiss, milvus-lite, or both comma-separated.")] = "faiss",
        probes: Annotated[int, typer.Option(help="Held-out queries scored against exact search.")] = 1000,
        kind: Annotated[str, typer.Option(help="FAISS kind: auto, flat, ivf, ivfsq8, ivfsq8r, ivfpq.")] = "auto",
        nprobe: Annotated[int | None, typer.Option(help="IVF lists probed (default: the index's).")] = None,
        milvus_vectors: Annotated[int | None, typer.Option(
            help="Cap for the Milvus Lite run (default: --vectors).")] = None,
        milvus_budget_s: Annotated[float, typer.Option(
            help="Stop inserting into Milvus Lite after this many build seconds and report the size reached.")
        ] = 900.0,
        json_out: JsonOption = False,
    ) -> None:
        """Build a face-like gallery of VECTORS and report build time, bytes, latency, recall, peak RSS."""
        if vectors < 1 or dim < 2 or probes < 1:
            raise BadInput("--vectors, --dim and --probes must be positive")
        engines = [e.strip() for e in index.split(",") if e.strip()]
        bad = [e for e in engines if e not in ("faiss", "milvus-lite")]
        if bad:
            raise BadInput(f"unknown index {bad[0]!r}; choose faiss or milvus-lite")
        out = bench_scale(vectors, dim, engines, probes_n=probes, kind=kind, nprobe=nprobe,
                          milvus_vectors=milvus_vectors, milvus_budget_s=milvus_budget_s)
        if json_out:
            print_json(out)
        else:
            console.print(out)
