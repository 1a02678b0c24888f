"""``visionlake check`` and ``visionlake repair`` (see :mod:`visionlake.check`)."""

from __future__ import annotations

from typing import Annotated

import typer

from visionlake.cli.common import JsonOption, LakeOption, console, err_console, print_json


def register(app: typer.Typer) -> None:
    """Add the root commands ``check`` and ``repair``."""

    @app.command()
    def check(
        lake: LakeOption = None,
        json_out: JsonOption = False,
        no_decode: Annotated[bool, typer.Option("--no-decode", help="Only test that derived files exist.")] = False,
    ) -> None:
        """Verify the catalog, every index against it, every derived file and the key. Exit 1 on problems."""
        from visionlake.check import check_lake

        rep = check_lake(lake, hash_files=not no_decode)
        if json_out:
            print_json(rep)
        else:
            _print(rep)
        if not rep["ok"]:
            raise typer.Exit(1)

    @app.command()
    def repair(lake: LakeOption = None, json_out: JsonOption = False) -> None:
        """Rebuild indexes and derived files from the catalog and the sources; say what could not be."""
        from visionlake.check import repair_lake

        rep = repair_lake(lake)
        if json_out:
            print_json(rep)
        else:
            for line in rep["repaired"]:
                console.print(f"[green]repaired[/]: {line}")
            for p in rep["could_not"]:
                err_console.print(f"[red]could not repair[/] {p['file']}: {p['problem']}")
            _print(rep["check"])
        if not rep["check"]["ok"]:
            raise typer.Exit(1)


def _print(rep: dict) -> None:
    for p in rep["problems"]:
        fix = "run 'visionlake repair'" if p["repairable"] else "repair cannot fix this"
        console.print(f"[red]problem[/] {p['file']}: {p['problem']} ({fix})")
    for w in rep["warnings"]:
        console.print(f"[yellow]warning[/] {w['file']}: {w['warning']}")
    checked = ", ".join(f"{k}={v}" for k, v in rep["checked"].items())
    status = "[green]ok[/]" if rep["ok"] else f"[red]{len(rep['problems'])} problem(s)[/]"
    console.print(f"check {rep['lake']}: {status} ({checked})")
