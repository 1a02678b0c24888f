"""Shared CLI plumbing: the console, the ``--lake`` and ``-c/--collection`` options, JSON output, tables
that never cut their key column, progress on stderr and error handling."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from visionlake.errors import VisionLakeError


def _stdout_console() -> Console:
    """Tables on stdout: the terminal's width, or 200 columns in a pipe (unless ``COLUMNS`` says), so that
    ``visionlake ... | grep`` sees one row per line instead of a table folded for 80 columns."""
    probe = Console(stderr=False)
    if probe.is_terminal or os.environ.get("COLUMNS"):
        return probe
    return Console(stderr=False, width=200)


console = _stdout_console()
err_console = Console(stderr=True)

LakeOption = Annotated[
    Path | None,
    typer.Option("--lake", envvar="VISIONLAKE_LAKE", help="Lake folder (default ./lake)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]

#: The one spelling of the collection option: every command that takes a collection accepts both.
COLLECTION_FLAGS = ("--collection", "-c")
#: The collection face commands use when none is named (``faces enroll`` creates it).
DEFAULT_FACES_COLLECTION = "people"


def collection_option(help: str = "Collection.") -> Any:
    """A ``typer.Option`` spelled ``-c/--collection`` (use it in ``Annotated[..., collection_option()]``)."""
    return typer.Option(*COLLECTION_FLAGS, help=help)


#: A required collection.
CollectionOption = Annotated[str, collection_option("Collection.")]
#: A collection that defaults to ``people`` (every ``faces`` command).
FacesCollectionOption = Annotated[
    str, collection_option(f"Faces collection (default {DEFAULT_FACES_COLLECTION!r}, created on first enroll).")
]
#: An optional collection (a filter, or one of two sources).
OptionalCollectionOption = Annotated[str | None, collection_option("Only this collection.")]


def cli_table(*columns: str, keys: Sequence[str] = (), numeric: Sequence[str] = (), title: str | None = None,
              **kwargs: Any) -> Table:
    """A Rich table that never cuts a value: when the terminal is narrow, values fold onto more lines.

    Rich's default ends a long value with an ellipsis, which loses exactly the part of a key
    (``major_color=...``, a file name) that tells rows apart; and a column that may not wrap pushes
    the last columns off the edge. So every column folds (no ``no_wrap``, no minimum widths, which
    Rich cannot always honour), key columns (``keys``) come first in the caller's order, and numeric
    columns align right. In a pipe the console is wide (see :data:`console`), so rows stay on one line.
    """
    t = Table(title=title, **kwargs)
    for c in columns:
        t.add_column(c, overflow="fold", justify="right" if c in numeric else "left",
                     style="bold" if c in keys else None)
    return t


class Heartbeat:
    """Feedback for any command that runs longer than a few seconds, on stderr (stdout may carry JSON).

    After :attr:`DELAY_S` without a command-specific progress display, a terminal shows a spinner with
    the elapsed time; a pipe or a log gets one line every :attr:`EVERY_S`. Commands with real progress
    (a bar with counts) or that talk to the user (a server, a prompt) call :func:`stop_heartbeat` first:
    Rich allows one live display per console.
    """

    DELAY_S = 3.0
    EVERY_S = 30.0

    def __init__(self, label: str) -> None:
        self.label = label
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._status: Any = None
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="visionlake-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _elapsed(self) -> str:
        s = int(time.monotonic() - self._t0)
        return f"{s // 60}:{s % 60:02d}"

    def _run(self) -> None:
        if self._stop.wait(self.DELAY_S):
            return
        if err_console.is_terminal:
            with self._lock:
                if self._stop.is_set():
                    return
                self._status = err_console.status(f"{self.label}: working {self._elapsed()}")
                self._status.start()
            while not self._stop.wait(1.0):
                with self._lock:
                    if self._status is not None:
                        self._status.update(f"{self.label}: working {self._elapsed()}")
        else:
            while not self._stop.wait(self.EVERY_S):
                err_console.print(f"{self.label}: still working ({self._elapsed()} elapsed)", highlight=False)

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
            if self._status is not None:
                self._status.stop()
                self._status = None


_HEARTBEAT: Heartbeat | None = None


def stop_heartbeat() -> None:
    """Stop the generic "working" indicator (before a progress bar, a prompt or a server log)."""
    if _HEARTBEAT is not None:
        _HEARTBEAT.stop()


@contextmanager
def progress_status(label: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    """Progress of a long command on stderr, also when stdout carries ``--json``.

    Yields ``advance(n=1, total=None, label=None)``. On a terminal it is a Rich bar (or a spinner with
    elapsed time when the total is unknown); elsewhere (a pipe, CI logs) one line every 10 s at most,
    so logs show that the command is alive without a flood of lines.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    stop_heartbeat()
    live = err_console.is_terminal
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err_console,
                        disable=not live, transient=False)
    state = {"last": 0.0}
    with progress:
        task = progress.add_task(label, total=total)

        def advance(n: int = 1, total: int | None = None, label: str | None = None) -> None:
            if total is not None:
                progress.update(task, total=total)
            if label is not None:
                progress.update(task, description=label)
            progress.advance(task, n)
            if not live:
                now = time.monotonic()
                if now - state["last"] >= 10.0:
                    state["last"] = now
                    t = progress.tasks[0]
                    of = f"/{int(t.total)}" if t.total else ""
                    err_console.print(f"{t.description}: {int(t.completed)}{of} ({t.elapsed or 0:.0f} s)",
                                      highlight=False)

        if not live:
            err_console.print(f"{label} ...", highlight=False)
        yield advance
        if not live:
            t = progress.tasks[0]
            of = f"/{int(t.total)}" if t.total else ""
            err_console.print(f"{t.description}: {int(t.completed)}{of} done ({t.elapsed or 0:.0f} s)",
                              highlight=False)


def _list_label(param: Any) -> str | None:
    """``<list[Path]>`` -> ``path`` for a repeatable parameter (Typer's own type label), else None."""
    try:
        label = param.display_type(None)
    except Exception:  # noqa: BLE001 - help cosmetics never break a command
        return None
    if isinstance(label, str) and label.startswith("<list[") and label.endswith("]>"):
        return label[6:-2].lower()
    return None


def tidy_help(cmd: Any) -> Any:
    """Sane metavars in ``--help``: flags take no value, so they show none (Typer prints ``<bool>``), and
    repeatable options show their element type with ``...`` instead of ``<list[str]>``.

    Typer vendors its own click, so parameters are recognised by their attributes, not by class."""
    params = list(getattr(cmd, "params", []))
    try:
        ctx = cmd.context_class(cmd)
        helper = cmd.get_help_option(ctx)
        if helper is not None:
            params.append(helper)
    except Exception:  # noqa: BLE001
        pass
    for param in params:
        kind = getattr(param, "param_type_name", "")
        if kind == "option" and getattr(param, "is_flag", False):
            param.metavar = ""
        elif kind == "option" and getattr(param, "multiple", False) and param.metavar is None:
            label = _list_label(param)
            if label:
                param.metavar = f"<{label}>..."
    for sub in (getattr(cmd, "commands", None) or {}).values():
        tidy_help(sub)
    return cmd


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
    global _HEARTBEAT
    words = [a for a in sys.argv[1:] if not a.startswith("-")][:2]
    _HEARTBEAT = Heartbeat(" ".join(["visionlake", *words])).start()
    try:
        tidy_help(typer.main.get_command(app))(prog_name="visionlake")
    except VisionLakeError as exc:
        stop_heartbeat()
        err_console.print(f"[bold red]error[/]: {exc.message}")
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        stop_heartbeat()
    return 0
