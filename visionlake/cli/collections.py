"""``visionlake collections create/list/delete``."""

from __future__ import annotations

from typing import Annotated

import typer

from visionlake.cli.common import JsonOption, LakeOption, cli_table, console, print_json, stop_heartbeat

app = typer.Typer(no_args_is_help=True)


@app.command()
def create(
    name: str,
    purpose: Annotated[str, typer.Option(help="plain, faces or fashion: decides which analysers run.")] = "plain",
    lake: LakeOption = None,
) -> None:
    """Create a collection."""
    from visionlake.lake import Lake

    Lake(lake).create_collection(name, purpose)
    console.print(f"created collection [bold]{name}[/] ({purpose})")


@app.command("list")
def list_(lake: LakeOption = None, json_out: JsonOption = False) -> None:
    """List collections with their image counts."""
    from visionlake.lake import Lake

    data = Lake(lake).info()["collections"]
    if json_out:
        print_json([{k: c[k] for k in ("name", "purpose", "images")} for c in data])
        return
    t = cli_table("collection", "purpose", "images", keys=("collection",), numeric=("images",))
    for c in data:
        t.add_row(c["name"], c["purpose"], str(c["images"]))
    console.print(t)


@app.command()
def delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    lake: LakeOption = None,
) -> None:
    """Delete a collection with its catalog rows, indexes and derived files."""
    from visionlake.lake import Lake

    lk = Lake(lake)
    lk.collection(name)
    if not yes:
        stop_heartbeat()
        typer.confirm(f"delete collection {name!r} and everything derived from it?", abort=True)
    lk.delete_collection(name)
    console.print(f"deleted collection [bold]{name}[/]")
