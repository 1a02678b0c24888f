"""``visionlake bench lfw`` and ``bench faces``: options and output of :mod:`visionlake.bench.faces_lfw`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionlake.bench.faces_lfw import run_faces, run_lfw
from visionlake.cli.common import JsonOption, console, print_json, progress_status


def register(app: typer.Typer) -> None:
    """Add ``bench lfw`` and ``bench faces`` to the bench group."""

    @app.command("lfw")
    def bench_lfw(
        data: Annotated[Path | None, typer.Option(help="LFW folder (images/ + pairs.txt).")] = None,
        pairs_file: Annotated[str, typer.Option("--pairs", help="LFW-format pair file inside --data "
                                                "(pairs.txt = View 2; pairsDevTrain.txt/pairsDevTest.txt = "
                                                "View 1).")] = "pairs.txt",
        pairs_csv: Annotated[Path | None, typer.Option(help="CSV of pairs: columns a,b,same.")] = None,
        root: Annotated[Path | None, typer.Option(help="Folder the CSV paths are relative to.")] = None,
        peer: Annotated[bool, typer.Option("--peer", help="Also score face_recognition in the same run.")] = False,
        workers: Annotated[int, typer.Option(help="Worker processes (each side).")] = 1,
        pick: Annotated[str, typer.Option(help="Face used when several are found: auto (centre for LFW "
                                          "pair files, largest for CSV), largest, centre.")] = "auto",
        backend: Annotated[str, typer.Option(help="Embedder backend: onnx (dlib weights) or dlib.")] = "onnx",
        flip: Annotated[bool | None, typer.Option("--flip/--no-flip", help="Add the embedding of each face's "
                                                  "mirror (default: the pack's; dlib yes, arcface-s no).")] = None,
        max_side: Annotated[int | None, typer.Option(help="Longest side the detector sees (dlib 1024, "
                                                   "arcface-s 640).")] = None,
        jitters: Annotated[int, typer.Option(help="Also average N perturbed copies of each face (dlib's "
                                             "num_jitters; N times slower to embed).")] = 0,
        limit: Annotated[int | None, typer.Option(help="Only the first N pairs (quick checks).")] = None,
        pack: Annotated[str, typer.Option(help="Face pack: dlib or arcface-s (non-commercial weights).")] = "dlib",
        upscale: Annotated[float | None, typer.Option(help="arcface-s: allow upscaling small photos up to this "
                                                      "factor to reach --max-side (default 1: never).")] = None,
        view1_threshold: Annotated[str, typer.Option(
            "--view1-threshold", help="Also report View 2 accuracy at one threshold chosen on LFW View 1 only: "
            "all (embed View 1's extra photos too) or shared (only View 1 pairs of photos View 2 holds).")] = "none",
        json_out: JsonOption = False,
    ) -> None:
        """LFW 10-fold verification accuracy, TAR at FAR 1e-3 and images/s; optionally vs face_recognition."""
        with progress_status("embedding") as advance:  # stderr, also with --json
            out = run_lfw(data, pairs_file, pairs_csv, root, peer, workers, pick, backend, flip, max_side, jitters,
                          limit, progress=advance, pack=pack, upscale=upscale,
                          view1_threshold=view1_threshold)
        if json_out:
            print_json(out)
        else:
            console.print(out)

    @app.command("faces")
    def bench_faces(
        data: Annotated[Path | None, typer.Option(help="Folder of photos (default: the LFW images).")] = None,
        peer: Annotated[bool, typer.Option("--peer", help="Also run face_recognition in the same run.")] = False,
        workers: Annotated[int, typer.Option(help="Worker processes (same for both sides).")] = 1,
        limit: Annotated[int | None, typer.Option(help="At most N images, spread over the folder.")] = 500,
        upscale: Annotated[int | None, typer.Option(help="Resize each image to NxN first (e.g. 2000) to "
                                                    "measure large photos; copies go to a temp folder.")] = None,
        backend: Annotated[str, typer.Option(help="Embedder backend: onnx (dlib weights) or dlib.")] = "onnx",
        flip: Annotated[bool | None, typer.Option("--flip/--no-flip", help="Add the embedding of each face's "
                                                  "mirror (default: the pack's; dlib yes, arcface-s no).")] = None,
        max_side: Annotated[int | None, typer.Option(help="Longest side the detector sees (dlib 1024, "
                                                   "arcface-s 640).")] = None,
        jitters: Annotated[int, typer.Option(help="Also average N perturbed copies of each face.")] = 0,
        pack: Annotated[str, typer.Option(help="Face pack: dlib or arcface-s (non-commercial weights).")] = "dlib",
        json_out: JsonOption = False,
    ) -> None:
        """End-to-end face throughput (decode, detect, align, embed every face), optionally vs the peer."""
        with progress_status("embedding") as advance:  # stderr, also with --json
            out = run_faces(data, peer, workers, limit, upscale, backend, flip, max_side, jitters,
                            progress=advance, pack=pack)
        if json_out:
            print_json(out)
        else:
            console.print(out)
