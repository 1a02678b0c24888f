"""``visionlake analyse``: run or re-run a collection's analysers over images already in the catalog."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from visionlake.cli.common import JsonOption, LakeOption, console, err_console, print_json


def rate_advancer(bar: Progress, task: Any) -> Callable[[int], None]:
    """A ``progress(n)`` callback for a bar without a known total: advances it and shows the rate."""

    def advance(n: int) -> None:
        bar.advance(task, n)
        t = bar.tasks[0]
        bar.update(task, rate=(t.completed / t.elapsed) if t.elapsed else 0.0)

    return advance


def progress_bar(label: str, enabled: bool) -> Progress:
    """The ingestion-style progress bar (stderr, only on a terminal)."""
    return Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]:.1f} img/s"), TimeElapsedColumn(), TextColumn("eta"),
                    TimeRemainingColumn(), console=err_console, disable=not enabled, transient=False)


def register(app: typer.Typer) -> None:
    """Attach ``analyse`` to the root app."""

    @app.command("analyse")
    def analyse_cmd(
        collection: Annotated[str, typer.Option("--collection", "-c", help="Collection to (re-)analyse.")],
        analyser: Annotated[list[str] | None, typer.Option(
            "--analyser", "-a", help="Analyser to run (repeatable; default: the collection's own).")] = None,
        workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores; 0: in-process).")]
        = None,
        restart: Annotated[bool, typer.Option("--restart", help="Start over instead of resuming an unfinished "
                                              "run.")] = False,
        lake: LakeOption = None,
        json_out: JsonOption = False,
    ) -> None:
        """Run a collection's analysers over its images again (resumable; missing files are reported)."""
        from visionlake.ingest.analyse import analyse
        from visionlake.lake import Lake

        lk = Lake(lake, create=False)
        show = sys.stderr.isatty() and not json_out
        bar = progress_bar("analyse", show)
        with bar:
            task = bar.add_task("analyse", total=None, rate=0.0)

            advance = rate_advancer(bar, task)

            report = analyse(lk, collection, analysers=analyser or None, workers=workers, restart=restart,
                             progress=advance, on_total=lambda n: bar.update(task, total=n))
        if json_out:
            print_json(report)
            return
        console.print(f"analysed {report['analysed']} image(s) of {report['collection']!r} with "
                      f"{', '.join(report['analysers'])}" + (" (resumed)" if report["resumed"] else "")
                      + f": {report['missing']} missing, {report['errors']} error(s), {report['images_per_s']} img/s")
        for p in report["problems"][:20]:
            console.print(f"  [yellow]{p['status']}[/] image {p['image_id']}: {p['detail']}")
