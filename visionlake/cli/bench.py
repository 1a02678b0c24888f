"""``visionlake bench ...``: each area contributes commands from ``visionlake/bench/<name>.py``."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(no_args_is_help=True)

#: Modules under visionlake.bench exposing ``register(app)``.
BENCH_MODULES = ["ingest", "faces_lfw", "faces_gallery", "fashion", "forecast", "scale", "api", "faults"]

for _name in BENCH_MODULES:
    try:
        _mod = importlib.import_module(f"visionlake.bench.{_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"visionlake.bench.{_name}":
            continue
        raise
    _mod.register(app)
