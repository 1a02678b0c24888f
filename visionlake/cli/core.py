"""Top-level commands: ``init``, ``info``, ``ingest``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from visionlake.cli.common import (
    JsonOption,
    LakeOption,
    cli_table,
    collection_option,
    console,
    print_json,
    progress_status,
)
from visionlake.imageio import REASONS


def register(app: typer.Typer) -> None:
    """Attach the core commands to the root app."""

    @app.command()
    def init(
        lake: LakeOption = None,
        catalog_url: Annotated[str | None, typer.Option(help="PostgreSQL URL instead of the embedded SQLite.")] = None,
    ) -> None:
        """Create a lake folder (catalog, indexes, derived files). Safe to run twice."""
        from visionlake.lake import Lake

        lk = Lake(lake, catalog_url=catalog_url)
        console.print(f"lake ready at [bold]{lk.root}[/] (catalog {lk.info()['catalog']})")

    @app.command()
    def info(lake: LakeOption = None, json_out: JsonOption = False) -> None:
        """Counts per collection, sizes on disk, index types."""
        from visionlake.lake import Lake

        data = Lake(lake, create=False).info()
        if json_out:
            print_json(data)
            return
        console.print(f"lake [bold]{data['lake']}[/]  catalog {data['catalog']}  {_mb(data['bytes_on_disk'])}")
        t = cli_table("collection", "purpose", "images", "paths", "on disk", "indexes", keys=("collection",),
                      numeric=("images", "on disk"))
        for c in data["collections"]:
            idx = ", ".join(f"{i['space']}: {i.get('kind')} ({i.get('count')})" for i in c["indexes"]) or "-"
            paths = ", ".join(f"{k} {v}" for k, v in sorted(c["paths"].items())) or "-"
            purpose = c["purpose"] + (f" ({c['face_pack']})" if c.get("face_pack") else "")
            t.add_row(c["name"], purpose, str(c["images"]), paths, _mb(c["bytes_on_disk"]), idx)
        console.print(t)
        for pack, rec in sorted(data.get("licences", {}).items()):
            console.print(f"licence accepted: [bold]{pack}[/] {rec.get('licence')} by {rec.get('accepted_by')} "
                          f"at {rec.get('accepted_at')} ({rec.get('terms')})")
        for c in data["collections"]:  # which model embedded each fashion collection (queries must match)
            m = c.get("fashion_model")
            if m:
                kind = "image and text" if m.get("text") else "image only: search by photo, heads on your labels"
                layout = f", {m['layout']} layout" if m.get("layout") else ""
                console.print(f"{c['name']}: fashion model {m.get('name')} ({m.get('dim')}-d{layout}, {kind})")
            if c.get("fashion_upgrade"):
                console.print(f"{c['name']}: layout upgrade unfinished (stage {c['fashion_upgrade'].get('stage')}): "
                              f"run `visionlake fashion upgrade -c {c['name']}`")

    @app.command()
    def ingest(
        source: Annotated[
            str, typer.Argument(help="Folder, CSV/Parquet manifest (path/uri column), or - for stdin.")
        ],
        collection: Annotated[str, collection_option("Target collection (created with --purpose if missing).")],
        meta: Annotated[Path | None, typer.Option(help="Metadata table joined by id or file name.")] = None,
        meta_key: Annotated[str | None, typer.Option(help="Column of --meta that names files.")] = None,
        workers: Annotated[
            int | None, typer.Option(help="Worker processes (default: all cores; 0: in-process).")
        ] = None,
        include: Annotated[list[str] | None, typer.Option(help="Glob of files to take (repeatable).")] = None,
        exclude: Annotated[list[str] | None, typer.Option(help="Glob of files to skip (repeatable).")] = None,
        purpose: Annotated[str | None, typer.Option(help="Create the collection with this purpose if missing.")] = None,
        runner: Annotated[str, typer.Option(help="local (process pool) or ray.")] = "local",
        address: Annotated[str | None, typer.Option(help="Ray cluster address, e.g. ray://HEAD:10001.")] = None,
        retry_rejected: Annotated[bool, typer.Option(
            "--retry-rejected", help="Process again the files earlier runs rejected.")] = False,
        lake: LakeOption = None,
        json_out: JsonOption = False,
    ) -> None:
        """Validate, hash, deduplicate, decode and analyse images; resumable after any crash."""
        from visionlake.errors import NotFound
        from visionlake.ingest import ingest as run_ingest
        from visionlake.lake import Lake

        lk = Lake(lake)
        try:
            lk.collection(collection)
        except NotFound:
            if purpose is None:
                raise
            lk.create_collection(collection, purpose)
        # progress on stderr, so also with --json: a bar on a terminal, a line every 10 s in a pipe or log
        with progress_status("ingest") as step:
            t0 = time.monotonic()
            seen = [0]

            def on_total(n: int | None) -> None:
                step(0, total=n)

            def advance(n: int) -> None:
                seen[0] += n
                rate = seen[0] / max(1e-9, time.monotonic() - t0)
                step(n, label=f"ingest {rate:.0f} img/s")

            report = run_ingest(lk, source, collection, meta=meta, meta_key=meta_key, workers=workers,
                                include=include or (), exclude=exclude or (), progress=advance,
                                on_total=on_total, runner=runner, ray_address=address,
                                retry_rejected=retry_rejected)
        if json_out:
            print_json(report)
            return
        _print_report(report)


def _print_report(r: dict) -> None:
    t = Table(title=f"ingest into {r['collection']}", show_header=False)
    for key in ("seen", "ingested", "duplicates", "near_duplicates", "rejected", "failed", "already_done", "wall_s",
                "images_per_s"):
        t.add_row(key.replace("_", " "), str(r[key]))
    console.print(t)
    if r["rejected_by_reason"]:
        rt = cli_table("reason", "files", "meaning", keys=("reason",), numeric=("files",), title="rejected")
        for reason, n in sorted(r["rejected_by_reason"].items(), key=lambda kv: -kv[1]):
            rt.add_row(reason, str(n), REASONS.get(reason, ""))
        console.print(rt)
        for ex in r["rejected_files"][:20]:
            console.print(f"  [red]{ex['reason']}[/] {ex['path']}: {ex['detail']}")
    if r.get("failed"):  # our failure (disk, permissions, vanished file): not recorded, the next run retries
        console.print(f"[yellow]{r['failed']} file(s) failed on our side and will be retried on the next run: "
                      + ", ".join(f"{k}={v}" for k, v in r["failed_by_reason"].items()) + "[/]")
        for ex in r["failed_files"][:10]:
            console.print(f"  [yellow]{ex['reason']}[/] {ex['path']}: {ex['detail'].splitlines()[0][:160]}")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
