"""The ``visionlake`` command line.

One Typer app; each area (faces, fashion, trends, bench, service) lives in its own module under
``visionlake/cli`` and exposes ``app`` (a ``typer.Typer``). Sub-apps are attached on first use of
:data:`app` (not at import time), so that area modules can import ``visionlake.cli.common`` without
a circular import, and a missing optional dependency in one area never breaks the others.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

#: (module under visionlake.cli, command group name, help)
SUBAPPS: list[tuple[str, str, str]] = [
    ("collections", "collections", "Create, list and delete collections in a lake."),
    ("images", "images", "List images of a collection, filtered by metadata."),
    ("faces", "faces", "Detect, verify, enroll, identify, cluster and forget faces."),
    ("fashion", "fashion", "Tag garments, name colours, train heads on your labels, search looks."),
    ("trends", "trends", "Attribute curves, rising/falling signals, forecasts and reports."),
    ("keys", "keys", "API keys for the service."),
    ("models", "models", "Model files: list, fetch (verified by SHA-256), verify, path."),
    ("bench", "bench", "Benchmarks that print JSON."),
]

_APP: typer.Typer | None = None


def _root(
    lake: Annotated[
        Path | None,
        typer.Option("--lake", envvar="VISIONLAKE_LAKE", help="Lake folder for every command (default ./lake)."),
    ] = None,
) -> None:
    """visionlake: faces at gallery scale and fashion trends, on one lake folder."""
    if lake is not None:
        os.environ["VISIONLAKE_LAKE"] = str(lake)


def build_app() -> typer.Typer:
    """The root Typer app with every area's commands attached (built once)."""
    global _APP
    if _APP is not None:
        return _APP
    from visionlake.cli.core import register as register_core

    app = typer.Typer(
        name="visionlake",
        help="Turn very large photo collections into answers: faces at gallery scale, fashion trends.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_root)
    register_core(app)
    importlib.import_module("visionlake.cli.analyse").register(app)
    for module, name, help_ in SUBAPPS:
        try:
            mod = importlib.import_module(f"visionlake.cli.{module}")
        except ModuleNotFoundError as exc:  # an optional extra missing
            if exc.name and exc.name.startswith("visionlake.cli"):
                continue
            raise
        app.add_typer(mod.app, name=name, help=help_)
    try:
        serve = importlib.import_module("visionlake.cli.serve")
        serve.register(app)
    except ModuleNotFoundError as exc:
        if not (exc.name and exc.name.startswith("visionlake.cli")):
            raise
    _APP = app
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        return build_app()
    raise AttributeError(f"module 'visionlake.cli' has no attribute {name!r}")


def main() -> None:
    """Entry point of the ``visionlake`` script: user errors print one line, never a traceback."""
    from visionlake.cli.common import run_cli

    sys.exit(run_cli(build_app()))


__all__ = ["app", "build_app", "main"]
