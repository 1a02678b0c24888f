"""``visionlake bench thresholds``: options and output of :mod:`visionlake.bench.faces_thresholds`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionlake.bench.faces_thresholds import calibrate_on_lfw_view1
from visionlake.cli.common import print_json
from visionlake.errors import BadInput


def register(app: typer.Typer) -> None:
    """Add ``bench thresholds`` to the bench group."""

    @app.command("thresholds")
    def bench_thresholds(
        data: Annotated[Path, typer.Option("--data", help="LFW folder (images/, pairsDevTrain.txt, "
                                           "pairsDevTest.txt).")],
        workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
        enroll_jitters: Annotated[int, typer.Option("--enroll-jitters", min=0, help="Also hold each FAR for "
                                                    "enrolled (jittered) vs plain templates.")] = 0,
        pack: Annotated[str, typer.Option("--pack", help="Face pack to calibrate (dlib, arcface-s).")] = "dlib",
    ) -> None:
        """Calibrate verification thresholds on LFW View 1 (minutes); prints the table for CALIBRATED."""
        if not (data / "pairsDevTrain.txt").is_file():
            raise BadInput(f"{data} does not hold LFW View 1 (pairsDevTrain.txt, pairsDevTest.txt; see --data)")
        print_json(calibrate_on_lfw_view1(str(data), workers=workers, enroll_jitters=enroll_jitters, pack=pack))
