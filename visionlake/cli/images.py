"""``visionlake images``: list a collection's images, filtered by metadata."""

from __future__ import annotations

from typing import Annotated

import typer

from visionlake.catalog.paths import display_path
from visionlake.cli.common import CollectionOption, JsonOption, LakeOption, cli_table, console, print_json
from visionlake.errors import BadInput

app = typer.Typer(no_args_is_help=True)


def parse_where(items: list[str] | None) -> dict[str, list[str] | str]:
    """``["season=Summer", "year=2012", "year=2013"]`` -> ``{"season": "Summer", "year": ["2012", "2013"]}``."""
    out: dict[str, list[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f"--where expects field=value, got {item!r}")
        out.setdefault(key.strip(), []).append(value.strip())
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


@app.command("list")
def list_images(
    collection: CollectionOption,
    where: Annotated[list[str] | None, typer.Option(help="field=value metadata filter (repeatable).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many rows first (paging).")] = 0,
    lake: LakeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Images with their metadata; e.g. ``--where season=Summer --where year=2012``."""
    from visionlake.lake import Lake

    lk = Lake(lake, create=False)
    filt = parse_where(where)
    rows = lk.images(collection, filt, limit=limit, offset=offset)
    total = lk.count_images(collection, filt)
    data = [{"id": r.id, "path": r.path, "sha256": r.sha256, "width": r.width, "height": r.height,
             "thumbnail": r.thumbnail, "meta": r.meta} for r in rows]
    if json_out:
        print_json({"collection": collection, "total": total, "offset": offset, "limit": limit, "images": data})
        return
    t = cli_table("id", "path", "size", "metadata", keys=("path",), numeric=("id", "size"),
                  title=f"{len(data)} of {total} image(s) in {collection!r}"
                  + (f" from #{offset + 1}" if offset else ""))
    for d in data:
        meta = ", ".join(f"{k}={v}" for k, v in list((d["meta"] or {}).items())[:6])
        t.add_row(str(d["id"]), display_path(d["path"]), f"{d['width']}x{d['height']}", meta)
    console.print(t)
    if offset + len(data) < total:
        console.print(f"[dim]{total - offset - len(data)} more: --offset {offset + len(data)} or --limit {total}[/]")
