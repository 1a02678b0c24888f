"""Shared CLI plumbing: the console, the ``--lake`` option, JSON output and error handling."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from visionlake.errors import VisionLakeError

console = Console(stderr=False)
err_console = Console(stderr=True)

LakeOption = Annotated[
    Path | None,
    typer.Option("--lake", envvar="VISIONLAKE_LAKE", help="Lake folder (default ./lake)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def print_json(obj: Any) -> None:
    """Print machine-readable output on stdout (numpy scalars and paths included)."""

    def default(o: Any) -> Any:
        if hasattr(o, "item"):
            return o.item()
        if hasattr(o, "tolist"):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        return str(o)

    sys.stdout.write(json.dumps(obj, default=default, indent=2) + "\n")
    sys.stdout.flush()


def run_cli(app: typer.Typer) -> int:
    """Run the Typer app; turn :class:`VisionLakeError` into a one-line message and its exit code.

    Usage errors are handled by Typer itself (standalone mode), which exits with status 2.
    """
    try:
        app()
    except VisionLakeError as exc:
        err_console.print(f"[bold red]error[/]: {exc.message}")
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
