"""``visionlake bench api``: options and output of :func:`visionlake.bench.api.run_api_bench`."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from visionlake.bench.api import run_api_bench


def register(app: typer.Typer) -> None:
    """Add ``bench api``."""

    @app.command("api")
    def bench_api(
        json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        duration: Annotated[float, typer.Option(min=1, help="Seconds of load.")] = 60.0,
        clients: Annotated[int, typer.Option(min=2, help="Concurrent clients (half identify, half search).")] = 50,
        faces: Annotated[int, typer.Option(min=100, help="Faces in the gallery.")] = 100_000,
        workers: Annotated[int, typer.Option(min=1, max=16, help="Server worker processes.")] = 1,
    ) -> None:
        """Load-test identify-by-embedding and fashion search through the HTTP service (loopback only)."""

        def log(msg: str) -> None:
            print(msg, file=sys.stderr, flush=True)

        report = run_api_bench(duration, clients, faces, workers, log=log)
        if json_out:
            print(json.dumps(report, indent=2))
        else:
            for k in ("identify", "search"):
                r = report[k]
                print(f"{k:9s} ok={r['requests_ok']} err={r['errors']} {r['throughput_rps']} rps "
                      f"p50={r['p50_ms']} p95={r['p95_ms']} p99={r['p99_ms']} ms")
