"""``visionlake bench ...``: commands that run the library in :mod:`visionlake.bench` and print JSON.

Each ``cli/bench_<name>.py`` holds the options and output of ``visionlake/bench/<name>.py``; the
bench modules themselves never import Typer or the CLI, so tests and scripts call them directly.
"""

from __future__ import annotations

import typer

from visionlake.cli import (
    bench_api,
    bench_faces_gallery,
    bench_faces_lfw,
    bench_faces_thresholds,
    bench_fashion,
    bench_faults,
    bench_forecast,
    bench_ingest,
    bench_scale,
)

app = typer.Typer(no_args_is_help=True)

for _module in (bench_ingest, bench_faces_lfw, bench_faces_gallery, bench_faces_thresholds, bench_fashion,
                bench_forecast, bench_scale, bench_api, bench_faults):
    _module.register(app)
