"""The ``visionlake`` command line.

One Typer app; each command group lives in its own module under ``visionlake/cli`` and exposes
``app`` (a ``typer.Typer``): the lake's own groups below, and one per area of
:data:`visionlake.areas.AREAS`. Sub-apps are attached on first use of :data:`app` (not at import
time), so that group modules can import ``visionlake.cli.common`` without a circular import. Every
group is part of the package: one that fails to import fails the command line loudly; optional
extras are imported only by the commands that need them.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

#: The lake's own command groups: (module, group name, help). Areas come from
#: :data:`visionlake.areas.AREAS` and are listed between ``images`` and ``keys``.
GROUPS: list[tuple[str, str, str]] = [
    ("visionlake.cli.collections", "collections", "Create, list and delete collections in a lake."),
    ("visionlake.cli.images", "images", "List images of a collection, filtered by metadata."),
    ("visionlake.cli.keys", "keys", "API keys for the service; rotate the lake key."),
    ("visionlake.cli.audit", "audit", "Verify the tamper-evident audit log."),
    ("visionlake.cli.models", "models", "Model files: list, fetch (verified by SHA-256), verify, path."),
    ("visionlake.cli.bench", "bench", "Benchmarks that print JSON."),
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
    from visionlake.areas import AREAS
    from visionlake.cli import serve
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
    groups = [*GROUPS[:2], *((a.cli, a.name, a.summary) for a in AREAS), *GROUPS[2:]]
    for module, name, help_ in groups:
        mod = importlib.import_module(module)
        app.add_typer(mod.app, name=name, help=help_)
    importlib.import_module("visionlake.cli.check").register(app)  # check, repair (issue 12)
    serve.register(app)
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
