"""``visionlake serve``: the REST API and web UI on a lake (uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from visionlake.cli.common import LakeOption, console, stop_heartbeat


def register(app: typer.Typer) -> None:
    """Add the root command ``serve``."""

    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
        lake: LakeOption = None,
        ingest_root: Annotated[list[str] | None, typer.Option(
            "--ingest-root", help="Folder editors may ingest from by server path (repeatable).")] = None,
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    ) -> None:
        """Serve the REST API (OpenAPI at /docs) and the web UI. Create a key first: visionlake keys create."""
        stop_heartbeat()
        from visionlake.lake import Lake
        from visionlake.service.app import create_app
        from visionlake.service.auth import list_keys
        from visionlake.service.server import check_port, run

        check_port(host, port)  # before opening the lake: one clear line, exit 1, not a server log
        lk = Lake(lake)
        if not any(not k["revoked"] for k in list_keys(lk)):
            console.print("[yellow]no API key exists yet[/]: create one with "
                          "'visionlake keys create --role admin' to sign in")
        api = create_app(lake=lk, ingest_roots=ingest_root)
        console.print(f"visionlake serving [bold]{lk.root}[/] on http://{host}:{port} (API reference: /docs)")
        run(api, host=host, port=port, log_level=log_level)
