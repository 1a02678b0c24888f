"""``visionlake keys create/list/revoke``: API keys of the service (shown once, stored hashed);
``visionlake keys rotate-lake-key``: replace the lake's encryption key."""

from __future__ import annotations

from typing import Annotated

import typer

from visionlake.cli.common import JsonOption, LakeOption, cli_table, collection_option, console, print_json

app = typer.Typer(no_args_is_help=True)


@app.command()
def create(
    role: Annotated[str, typer.Option(help="viewer, editor or admin.")],
    collection: Annotated[list[str] | None, collection_option(
        "Limit the key to this collection (repeatable; default: every collection).")] = None,
    name: Annotated[str | None, typer.Option(help="A name to recognise the key by.")] = None,
    rate: Annotated[float | None, typer.Option(help="Requests per second for this key (default: server's).")] = None,
    lake: LakeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create an API key and print it once (only a salted hash is stored)."""
    from visionlake.lake import Lake
    from visionlake.service.auth import create_key

    out = create_key(Lake(lake), role, collection or [], name, rate)
    if json_out:
        print_json(out)
        return
    scope = ", ".join(out["collections"]) or "all collections"
    console.print(f"created key #{out['id']} [bold]{out['name']}[/] ({out['role']}, {scope})")
    console.print("store it now, it is not shown again:")
    typer.echo(out["key"])


@app.command("list")
def list_(lake: LakeOption = None, json_out: JsonOption = False) -> None:
    """List keys (never their secrets)."""
    from visionlake.lake import Lake
    from visionlake.service.auth import list_keys

    rows = list_keys(Lake(lake))
    if json_out:
        print_json(rows)
        return
    t = cli_table("id", "name", "prefix", "role", "collections", "created", "last used", "status", keys=("name",),
                  numeric=("id",))
    for r in rows:
        status = "revoked" if r["revoked"] else "active"
        t.add_row(str(r["id"]), r["name"], r["prefix"], r["role"], ", ".join(r["collections"]) or "all",
                  (r["created_at"] or "")[:19], (r["last_used_at"] or "-")[:19], status)
    console.print(t)


@app.command()
def revoke(key_id: int, lake: LakeOption = None) -> None:
    """Revoke a key by id; it stops working on its next request."""
    from visionlake.lake import Lake
    from visionlake.service.auth import revoke_key

    out = revoke_key(Lake(lake), key_id)
    console.print(f"revoked key #{out['id']} {out['name']}")


@app.command("rotate-lake-key")
def rotate_lake_key_cmd(lake: LakeOption = None, json_out: JsonOption = False) -> None:
    """Re-encrypt every face template and encrypted index file under a new lake key, then retire the old one.

    Crash-safe: the old key stays in keys/lake.key until everything is re-encrypted; if the command
    is interrupted, run it again and it finishes (other commands refuse until then). Stop a running
    `visionlake serve` first (it holds the old key in memory). Back up the new keys/lake.key
    afterwards: old backups of the key no longer open this lake.
    """
    from visionlake.keyring import rotate_lake_key
    from visionlake.lake import Lake

    out = rotate_lake_key(Lake(lake, create=False))
    if json_out:
        print_json(out)
        return
    console.print(f"lake key rotated{' (resumed)' if out['resumed'] else ''}: {out['templates']} template(s), "
                  f"{out['index_files']} index file(s) re-encrypted; new key fingerprint {out['fingerprint']}. "
                  "Back up keys/lake.key now.")
