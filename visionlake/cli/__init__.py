"""The ``visionlake`` command line.

One Typer app; each area (faces, fashion, trends, bench, service) lives in its own module under
``visionlake/cli`` and exposes ``app`` (a ``typer.Typer``). Sub-apps are attached here so that a
missing optional dependency in one area never breaks the others.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from visionlake.cli.common import console, run_cli
from visionlake.cli.core import register as _register_core

app = typer.Typer(
    name="visionlake",
    help="Turn very large photo collections into answers: faces at gallery scale, fashion trends.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_register_core(app)


@app.callback()
def _root(
    lake: Annotated[
        Path | None,
        typer.Option("--lake", envvar="VISIONLAKE_LAKE", help="Lake folder for every command (default ./lake)."),
    ] = None,
) -> None:
    """visionlake: faces at gallery scale and fashion trends, on one lake folder."""
    if lake is not None:
        os.environ["VISIONLAKE_LAKE"] = str(lake)

#: (module under visionlake.cli, command group name, help)
SUBAPPS: list[tuple[str, str, str]] = [
    ("collections", "collections", "Create, list and delete collections in a lake."),
    ("images", "images", "List images of a collection, filtered by metadata."),
    ("faces", "faces", "Detect, verify, enroll, identify, cluster and forget faces."),
    ("fashion", "fashion", "Tag garments, name colours, train heads on your labels, search looks."),
    ("trends", "trends", "Attribute curves, rising/falling signals, forecasts and reports."),
    ("keys", "keys", "API keys for the service."),
    ("bench", "bench", "Benchmarks that print JSON."),
]

for _module, _name, _help in SUBAPPS:
    try:
        _mod = importlib.import_module(f"visionlake.cli.{_module}")
    except ModuleNotFoundError as exc:  # an area not built yet, or an optional extra missing
        if exc.name and exc.name.startswith("visionlake.cli"):
            continue
        raise
    app.add_typer(_mod.app, name=_name, help=_help)

try:
    _serve = importlib.import_module("visionlake.cli.serve")
    _serve.register(app)
except ModuleNotFoundError as exc:
    if not (exc.name and exc.name.startswith("visionlake.cli")):
        raise


def main() -> None:
    """Entry point of the ``visionlake`` script: user errors print one line, never a traceback."""
    sys.exit(run_cli(app))


__all__ = ["app", "console", "main"]
